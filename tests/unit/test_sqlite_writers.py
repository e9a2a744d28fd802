"""SQLite writers in one process queue on one lock (``catalog.db.one_writer_at_a_time``),
not in SQLite's sleeping busy handler; the lock is given back after commit and rollback."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from catalog.db import make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE e (id INTEGER PRIMARY KEY, who TEXT)"))
    return engine


def test_many_threads_write_and_every_row_lands(engine: Engine) -> None:
    def write(who: int) -> None:
        for _ in range(20):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO e (who) VALUES (:w)"), {"w": str(who)})

    threads = [threading.Thread(target=write, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM e")).scalar() == 240


def test_a_rolled_back_writer_gives_the_lock_back(engine: Engine) -> None:
    def fails_mid_transaction() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO e (who) VALUES ('a')"))
            raise RuntimeError("the caller fails mid-transaction")

    with pytest.raises(RuntimeError):
        fails_mid_transaction()
    started = time.monotonic()
    with engine.begin() as conn:  # not kept waiting by the one rolled back
        conn.execute(text("INSERT INTO e (who) VALUES ('b')"))
    assert time.monotonic() - started < 5
    with engine.connect() as conn:
        assert conn.execute(text("SELECT who FROM e")).scalars().all() == ["b"]


def test_readers_are_not_queued_behind_a_writer(engine: Engine) -> None:
    with engine.begin() as writer:
        writer.execute(text("INSERT INTO e (who) VALUES ('w')"))
        done: list[int] = []
        reader = threading.Thread(
            target=lambda: done.append(engine.connect().execute(text("SELECT 1")).scalar_one())
        )
        reader.start()
        reader.join(5)
        assert done == [1]  # read while the write transaction is still open


def test_a_writer_that_cannot_get_in_says_so(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.sqlite'}", busy_s=0.2)  # a short wait
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE e (id INTEGER PRIMARY KEY)"))
    with engine.begin() as first:
        first.execute(text("INSERT INTO e DEFAULT VALUES"))
        with pytest.raises(OperationalError, match="database is locked") as refused:
            _insert(engine)
    # It waited in this process's queue, not in SQLite's busy handler: SQLite never saw it.
    assert isinstance(refused.value.orig, TimeoutError)


def _insert(engine: Engine) -> None:
    with engine.begin() as other:
        other.execute(text("INSERT INTO e DEFAULT VALUES"))
