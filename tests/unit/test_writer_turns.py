"""SQLite's write lock in turns (``catalog.db.WriterTurns``): an urgent writer (the events a
reviewer's page waits for) goes before the writers already waiting."""

from __future__ import annotations

import threading
import time

from catalog.db import WriterTurns


def test_an_urgent_writer_goes_before_the_writers_already_waiting() -> None:
    turns = WriterTurns()
    assert turns.acquire(1.0)  # a writer under way
    order: list[str] = []

    def write(name: str, urgent: bool) -> None:
        if urgent:
            with turns.urgent():
                assert turns.acquire(10.0)
        else:
            assert turns.acquire(10.0)
        order.append(name)
        turns.release()

    waiting = [threading.Thread(target=write, args=(f"upload-{i}", False)) for i in range(3)]
    for t in waiting:
        t.start()
    time.sleep(0.2)  # the uploads' writers are queued first
    reviewer = threading.Thread(target=write, args=("view", True))
    reviewer.start()
    time.sleep(0.2)
    turns.release()
    for t in [*waiting, reviewer]:
        t.join(10)
    assert order[0] == "view"
    assert sorted(order[1:]) == ["upload-0", "upload-1", "upload-2"]


def test_a_writer_that_waits_too_long_is_told_so() -> None:
    turns = WriterTurns()
    assert turns.acquire(1.0)
    started = time.monotonic()
    assert not turns.acquire(0.2)
    assert 0.15 < time.monotonic() - started < 2
    turns.release()
    assert turns.acquire(0.1)
