"""Group commit: writes that many threads make at once go into the catalogue together, in one
transaction and one sync to disk, each caller answered only once its own write is durable.

The catalogue's standalone custody events (a reviewer's ``view`` of a page, an access denied)
come from many request threads at once. One transaction each costs one fsync each and, on
SQLite, one turn at its single write lock: under fifty uploading devices a reviewer's page
waited behind every chunk's commit for its one audit row. Here the first caller to find no
write under way writes every event waiting at that moment, its own among them; the callers
that came meanwhile wait, and the next of them writes the next batch. Nothing is answered
before it is committed, and nothing is written in another order than it arrived.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Slot(Generic[T]):
    item: T
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[T]):
    """``add(item)`` returns once ``write`` has committed a batch that holds ``item`` (or
    raises what that batch's write raised: every caller in a failed batch is told)."""

    def __init__(self, write: Callable[[Sequence[T]], None], max_batch: int = 500) -> None:
        self._write = write
        self._max = max_batch
        self._cv = threading.Condition()
        self._waiting: list[_Slot[T]] = []
        self._writing = False

    def add(self, item: T) -> None:
        slot = _Slot(item)
        with self._cv:
            self._waiting.append(slot)
            while not slot.done:
                if self._writing:
                    self._cv.wait()
                    continue
                self._lead()
        if slot.error is not None:
            raise slot.error

    def _lead(self) -> None:
        """Write the waiting batch (called holding the condition; released while writing)."""
        batch, self._waiting = self._waiting[: self._max], self._waiting[self._max :]
        self._writing = True
        error: BaseException | None = None
        self._cv.release()
        try:
            self._write([s.item for s in batch])
        except BaseException as exc:  # handed to every caller of the batch, then re-raised
            error = exc
        finally:
            self._cv.acquire()
            self._writing = False
            for s in batch:
                s.done, s.error = True, error
            self._cv.notify_all()
