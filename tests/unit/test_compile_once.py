"""The catalogue's cache of compiled statements (``catalog.db.CompileOnce``): of the threads
that want a statement not yet compiled, one compiles it and the others wait for its form."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select

from catalog.db import CompileOnce, make_engine


def _ask_in_thread(
    cache: CompileOnce, default: object = None
) -> tuple[threading.Thread, list[object]]:
    """Another thread asks ``cache`` for statement "k"; its answer lands in the list."""
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(cache.get("k", default)))
    thread.start()
    return thread, got


def test_a_second_thread_waits_for_the_first_ones_form() -> None:
    cache = CompileOnce(wait_s=10)
    assert cache.get("k") is None  # this thread is to compile it
    waiter, got = _ask_in_thread(cache)
    time.sleep(0.2)
    assert waiter.is_alive() and not got  # waiting, not compiling it too
    cache["k"] = "compiled"
    waiter.join(5)
    assert got == ["compiled"]
    assert cache.get("k") == "compiled" and len(cache) == 1


def test_a_waiter_compiles_itself_when_the_first_never_stores() -> None:
    cache = CompileOnce(wait_s=0.2)
    assert cache.get("k") is None  # the compiling thread fails and stores nothing
    started = time.monotonic()
    waiter, got = _ask_in_thread(cache, "mine to compile")
    waiter.join(5)
    assert got == ["mine to compile"]
    assert 0.15 <= time.monotonic() - started < 3


def test_after_the_wait_a_thread_takes_over_without_waiting() -> None:
    """The first compiler failed long ago: whoever asks next compiles at once."""
    cache = CompileOnce(wait_s=0.2)
    assert cache.get("k") is None
    time.sleep(0.3)
    asked = time.monotonic()
    other, got = _ask_in_thread(cache, "mine to compile")
    other.join(5)
    assert got == ["mine to compile"]
    assert time.monotonic() - asked < 0.15


def test_the_compiling_thread_asking_again_does_not_wait_for_itself() -> None:
    cache = CompileOnce(wait_s=10)
    assert cache.get("k") is None
    started = time.monotonic()
    assert cache.get("k") is None
    assert time.monotonic() - started < 1


def test_other_statements_do_not_wait() -> None:
    cache = CompileOnce(wait_s=10)
    assert cache.get("a") is None
    started = time.monotonic()
    assert cache.get("b") is None  # another statement: its own first compiler
    cache["b"] = "b form"
    assert cache.get("b") == "b form"
    assert time.monotonic() - started < 1


@pytest.fixture
def short_switches() -> Iterator[None]:
    """Threads switch every 50 µs, so that the others reach the statement while the first
    compiles it."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.00005)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_threads_running_a_new_statement_at_once_compile_it_once(
    tmp_path: Path, short_switches: None
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}")
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), *(
            Column(f"c{i}", String) for i in range(40)
        )
    )  # fmt: skip
    table.create(engine)
    dialect = engine.dialect
    start = threading.Barrier(8)
    misses: list[bool] = []

    def run() -> None:
        statement = select(table).where(table.c.id == bindparam("id"))  # each its own object
        start.wait(10)
        with engine.connect() as conn:
            result = conn.execute(statement, {"id": 1})
            misses.append(result.context.cache_hit == dialect.CACHE_MISS)  # type: ignore[attr-defined]

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(misses) == 8
    assert misses.count(True) == 1
    engine.dispose()
