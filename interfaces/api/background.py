"""Work the API process does off the request path: its ``Background`` thread (processing
uploads and signing ledger heads on embedded defaults) and ``_in_thread`` (blocking work off
the event loop)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from workers.app import Vigil

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


class Background:
    """The API process's own background work on embedded defaults: it drains the in-process bus
    (segmenting and hashing) when an upload finishes, so that finishing does not wait for it;
    re-announces, at start, recordings a previous process did not finish; signs a tree head of
    the ledger every ``sign_every_s``; and on stop drains what is queued before it returns.
    Under Kafka the stage workers and ``vigil ledger run`` do this; it only signs heads then
    if asked to."""

    def __init__(self, vigil: Vigil, *, sign_every_s: float | None) -> None:
        self.vigil = vigil
        self.sign_every_s = sign_every_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vigil-background", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        yield_cpu()
        with contextlib.suppress(Exception):
            if self.vigil.bus is not None and self.vigil.resume_unfinished():
                self._wake.set()
        next_sign = time.monotonic()
        while True:
            timeout = None if self.sign_every_s is None else max(0.0, next_sign - time.monotonic())
            self._wake.wait(timeout)
            self._wake.clear()
            try:
                self.vigil.run_pipeline()
            except Exception:  # the message stays queued; the next wake retries it
                logger.exception("background: processing failed; it is retried")
            signs = self.sign_every_s is not None and self.vigil.ledger.can_sign
            if signs and time.monotonic() >= next_sign:
                try:
                    self.vigil.ledger.checkpoint()
                except Exception:
                    logger.exception("background: no tree head signed; retrying")
                next_sign = time.monotonic() + (self.sign_every_s or 0.0)
            if self._stop.is_set():
                return


BACKGROUND_NICE = 10
"""How much the background thread yields the CPU to request threads (``nice``: 0 to 19)."""


def yield_cpu(niceness: int = BACKGROUND_NICE) -> None:
    """Lower this thread's CPU priority, and so that of every thread and ffmpeg run it starts
    (they inherit it): on two cores, segmenting and hashing fifty uploads at once otherwise
    takes the CPU from the requests of the devices still uploading and of the reviewers
    reading. Linux gives each thread its own nice value; elsewhere nothing changes."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError) as exc:
        logger.debug("background: priority unchanged (%s)", exc)


async def _in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Blocking work (disk, ffmpeg, the catalogue) off the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)


UPLOAD_THREADS = 8
"""Device uploads' blocking work (start, chunks, finish) runs on at most this many threads."""
UPLOAD_THREADS_WHILE_PEOPLE = 2
"""... and on at most this many while people's requests are being worked on (``PeopleFirst``)."""


class Lane:
    """A thread lane of its own for one kind of blocking work. Sync routes, dependencies and
    ``_in_thread`` share AnyIO's default pool (40 threads): fifty devices uploading at once
    would hold every one of them writing and fsyncing chunks, and a reviewer's page would wait
    for a thread. Uploads run in their own lane; more than ``tokens`` at once wait their turn
    without a thread, and the default pool stays free for everyone else.

    Threads share one interpreter lock, so a page also waits for the CPU every running upload
    thread takes. While anyone else is being answered (``others_in``), the lane lets only
    ``yielding`` of its work start: what is running goes on, the rest waits (without a thread)
    until the others' answers have started. With fifty devices docking while twenty reviewers
    open their cases and read (``bench/api_load.py --think 1``, seven runs each), the
    reviewers' p99 was 223-281 ms yielding to 2, against 243-346 ms with all 8, at the same
    upload throughput. Twenty reviewers asking with no pause at all keep the lane narrow: the
    uploads then take 2.3 times as long, and the pages are no faster (that load is bounded by
    the pages themselves)."""

    def __init__(self, tokens: int, *, yielding: int | None = None) -> None:
        self.tokens = tokens
        self.yielding = tokens if yielding is None else yielding
        self._others = 0
        self._limiter: anyio.CapacityLimiter | None = None

    def _get(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # made on first use, inside the event loop
            self._limiter = anyio.CapacityLimiter(self.tokens)
        return self._limiter

    async def run(self, fn: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(fn, limiter=self._get())

    def others_in(self) -> None:
        """Someone else's request is being worked on: start at most ``yielding`` (event loop
        only, as ``others_out``)."""
        self._others += 1
        if self._others == 1:
            self._get().total_tokens = self.yielding

    def others_out(self) -> None:
        """... and its answer has started (or it ended): the lane widens when none is left."""
        self._others -= 1
        if self._others == 0:
            self._get().total_tokens = self.tokens

    @property
    def limit(self) -> int:
        """How many of its tasks the lane lets run at once now."""
        return int(self._get().total_tokens)
