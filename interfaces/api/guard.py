"""Failed authentication: counted, summarised, throttled; never one custody event per request.

A request that proves no principal (no token, an unknown one, a revoked one, a forged or stale
media link) is not a fact about anyone: it goes to a Prometheus counter and to a per-address
summary, written to the custody log at most once per address per window ("N failed attempts
from ADDRESS", ``access.denied``), and is named after a principal only when the token it
presented was found to exist. After ``limit`` failures in a minute an address gets 429 with
Retry-After, before its next token is even looked at: guessing tokens gets nowhere fast.
Memory is bounded: at most ``MAX_SOURCES`` addresses are tracked at once; beyond that the
failures are summarised under ``other addresses``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import HTTPException, Request
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from catalog.repository import Event, now

logger = logging.getLogger(__name__)

MAX_SOURCES = 10_000
OTHER_SOURCES = "other addresses"
UNKNOWN = "unknown"  # the actor of failures no verified token names
PER_S = 60.0  # the throttle's window: ``limit`` failures within it
WHERE_CHARS = 80
MAX_PRINCIPALS = 10


def client_source(request: Request) -> str:
    """The address a request came from (the socket's peer; no forwarding header is trusted)."""
    host = request.client.host if request.client else ""
    return sanitised(host, 45) or UNKNOWN


def sanitised(text: str, limit: int = WHERE_CHARS) -> str:
    """``text`` as printable ASCII, cut to ``limit`` characters (with … when cut)."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text[: limit + 1])
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


class FailedAuthDetail(BaseModel):
    """The summary of one address's failed authentications over one window."""

    source: str
    attempts: int
    first: datetime
    last: datetime
    reasons: dict[str, int]
    principals: list[str]  # whose existing (revoked, expired, disabled) tokens were presented
    example: str  # one request, method and path, sanitised and bounded


@dataclass
class _Window:
    first: datetime
    opened: float  # monotonic
    attempts: int = 0
    reasons: Tally[str] = field(default_factory=Tally)
    principals: set[str] = field(default_factory=set)
    unknown: int = 0
    example: str = ""
    last: datetime | None = None


_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, tuple[Counter, Counter]] = (
    weakref.WeakKeyDictionary()
)


def auth_counters(registry: CollectorRegistry) -> tuple[Counter, Counter]:
    """The failure and throttle counters on ``registry`` (made once per registry)."""
    if registry not in _COUNTERS:
        failures = Counter(
            "vigil_api_auth_failures",
            "Requests to the API that proved no principal, by reason.",
            ["reason"],
            registry=registry,
        )
        throttled = Counter(
            "vigil_api_throttled",
            "Requests refused with 429 after repeated failed authentication from their address.",
            registry=registry,
        )
        _COUNTERS[registry] = (failures, throttled)
    return _COUNTERS[registry]


class AuthGuard:
    """Counts, summarises and throttles failed authentication (see the module docstring).
    Thread-safe: the API's dependencies run on a thread pool."""

    def __init__(
        self,
        *,
        record: Callable[[Event], None],
        registry: CollectorRegistry,
        limit: int = 20,
        window_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.record = record
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self.failures, self.throttled = auth_counters(registry)
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}
        self._windows: dict[str, _Window] = {}

    def check(self, source: str) -> None:
        """429, with Retry-After, if ``source`` failed ``limit`` times in the last minute."""
        wait = self.retry_after(source)
        if wait is not None:
            self.throttled.inc()
            raise HTTPException(
                429,
                f"too many failed attempts from this address; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def retry_after(self, source: str) -> int | None:
        """Seconds ``source`` must wait, or None if it may try now."""
        at = self.clock()
        with self._lock:
            recent = self._recent.get(source)
            if recent is None or len(recent) < self.limit:
                return None
            wait = recent[0] + PER_S - at
        return math.ceil(wait) if wait > 0 else None

    def failed(
        self, source: str, reason: str, *, principal: str | None = None, where: str = ""
    ) -> None:
        """One failed authentication from ``source``; ``principal`` only if the credential
        presented was found to exist and belongs to them."""
        self.failures.labels(reason=reason).inc()
        at = self.clock()
        with self._lock:
            self._throttle(source, at)
            window = self._window(source, at)
            window.attempts += 1
            window.reasons[reason] += 1
            window.last = now()
            window.example = window.example or sanitised(where)
            if principal is None:
                window.unknown += 1
            elif len(window.principals) < MAX_PRINCIPALS:
                window.principals.add(principal)
        try:
            self.flush()
        except Exception:  # the summary stays unwritten; the request is refused all the same
            logger.exception("failed authentication: the summary could not be written")

    def expired(self) -> None:
        """A genuine media link used after its expiry: counted, neither logged nor throttled."""
        self.failures.labels(reason="expired media link").inc()

    def flush(self, *, everything: bool = False) -> int:
        """Write the summary of every window that has closed (all of them with
        ``everything``, as at shutdown); returns how many were written."""
        at = self.clock()
        closed: list[tuple[str, _Window]] = []
        with self._lock:
            # Windows are kept in the order they opened: those that closed come first.
            for source, window in self._windows.items():
                if not everything and at - window.opened < self.window_s:
                    break
                closed.append((source, window))
            for source, _ in closed:
                del self._windows[source]
        for source, window in closed:
            self.record(_summary(source, window, self.window_s))
        return len(closed)

    def _throttle(self, source: str, at: float) -> None:
        recent = self._recent.get(source)
        if recent is None:
            if len(self._recent) >= MAX_SOURCES:
                self._forget_quiet(at)
            recent = self._recent.setdefault(source, deque(maxlen=self.limit))
        while recent and at - recent[0] >= PER_S:
            recent.popleft()
        recent.append(at)

    def _forget_quiet(self, at: float) -> None:
        """Drop the addresses with no failure in the last minute (or, if none is quiet, the
        oldest), so that the table stays within MAX_SOURCES."""
        quiet = [s for s, r in self._recent.items() if not r or at - r[-1] >= PER_S]
        for source in quiet or [next(iter(self._recent))]:
            del self._recent[source]

    def _window(self, source: str, at: float) -> _Window:
        if source not in self._windows and len(self._windows) >= MAX_SOURCES:
            source = OTHER_SOURCES
        window = self._windows.get(source)
        if window is None:
            window = self._windows[source] = _Window(first=now(), opened=at)
        return window


def _summary(source: str, window: _Window, window_s: float) -> Event:
    """The one custody event of ``source``'s failures over ``window``."""
    principals = sorted(window.principals)
    named = len(principals) == 1 and window.unknown == 0
    minutes = max(1, round(window_s / 60))
    detail = FailedAuthDetail(
        source=source,
        attempts=window.attempts,
        first=window.first,
        last=window.last or window.first,
        reasons=dict(window.reasons.most_common(10)),
        principals=principals,
        example=window.example,
    )
    return Event(
        "access.denied",
        principals[0] if named else UNKNOWN,
        reason=f"{window.attempts} failed attempts from {source} within {minutes} min",
        detail=detail,
    )
