"""The custody page's events as answered, kept while the signed tree head they are proved against
is the newest one.

A page of a case's custody log is up to 500 events, each with its canonical leaf (the exact
bytes in the log) and its inclusion proof. Reviewers ask for the same first page again and
again while a head stands (the page signs a fresh head at most every few seconds), and building
each event's answer again was most of the page's cost (py-spy: the canonical JSON 24%, the
proofs 17%, the answer models 7% of the server's time on that page).

What is kept is keyed by everything the answer is made from: the event's row as read for this
request (every column) and its position in the log, for one tree size. A row rewritten in the
catalogue is another key, so its answer is built from what the row now says, exactly as it
would be without this cache: the leaf beside it then fails its proof, as it must. Nothing read
from the catalogue is skipped; only the work of turning the same values into the same answer.
"""

from __future__ import annotations

import threading

from catalog.repository import EventRecord
from interfaces.api.schemas import EventOut

MAX_KEPT = 5_000  # answers kept at once (2-3 KB each: ten cases' first pages); past it, afresh

Key = tuple[EventRecord, int | None]  # the row, and its position in the log (None: not yet)


class ProvedEvents:
    """Answers (``EventOut``) of custody events, for the newest tree size asked about."""

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self._max = max_kept
        self._lock = threading.Lock()
        self._size = -1
        self._kept: dict[Key, EventOut] = {}

    def get(self, size: int, key: Key) -> EventOut | None:
        with self._lock:
            return self._kept.get(key) if size == self._size else None

    def put(self, size: int, key: Key, answer: EventOut) -> None:
        """Keep ``answer`` if ``size`` is the newest tree size seen (an older head's answers are
        not kept: the next request proves against the newer one)."""
        with self._lock:
            if size < self._size:
                return
            if size > self._size or len(self._kept) >= self._max:
                self._size, self._kept = size, {}
            self._kept[key] = answer
