"""Work that follows the custody path, run behind it: the in-process bus drained on a thread of
its own at a lower CPU priority.

On embedded defaults one process does everything. A live recorder stores and catalogues each
segment as it closes (the custody path); the dense index and finalise then run from the
in-process bus. Drained on the recorder's own thread they would hold up the next segment's
custody for as long as a decode takes (seconds per segment), so they run here instead: the
recorder only pokes. On Linux the priority (nice) is per thread and inherited by the processes
a thread starts, so the ffmpeg decoders of the dense index run niced too, and the custody
path's ffmpeg (keyframes) and hashing get the CPU first when it is short.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

BEHIND_NICE = 19
"""How much lower the priority of the work behind is (added to the process's nice value,
capped at 19, the lowest). The lowest, because each ffmpeg is a scheduler group of its own
(see ``transcode.ffmpeg._share_priority``): 16 streams' decoders at nice 10 (weight 110 each)
would together still outweigh one custody process at 0 (weight 1024); at 19 (15 each) they
take what the custody path leaves."""


def lower_this_thread(increment: int) -> bool:
    """Lower the calling thread's CPU priority (Linux: nice applies per thread); False if the
    platform does not allow it."""
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(current + increment, 19))
        return True
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted
        logger.info("could not lower the priority of the work behind: %s", exc)
        return False


class BehindDrain:
    """Drains ``drain`` on its own thread whenever poked; ``close`` finishes what is queued."""

    def __init__(self, drain: Callable[[], int], *, nice: int = BEHIND_NICE) -> None:
        self._drain = drain
        self._nice = nice
        self._wake = threading.Event()
        self._closing = threading.Event()
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="behind", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def close(self, timeout_s: float | None = None) -> bool:
        """Drain what is left, then stop; True if the thread finished within ``timeout_s``."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        if self._nice:
            lower_this_thread(self._nice)
        while True:
            self._wake.wait()
            self._wake.clear()
            closing = self._closing.is_set()
            try:
                self._drain()
            except Exception as exc:  # kept on the bus; the next poke (or close) retries
                logger.exception("work behind the custody path failed; will retry")
                self.errors.append(exc)
                if closing:
                    return
            if closing and not self._wake.is_set():
                return
