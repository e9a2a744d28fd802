"""Engine creation and migrations, for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, create_engine, event, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.util import LRUCache

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x5669_6769_6C00  # "Vigil": the advisory lock key of schema migrations
SQLITE_BUSY_S = 30.0  # how long a writer waits for SQLite's write lock
SQLITE_POOL = 16
SQLITE_OVERFLOW = 48
"""SQLite connections kept open, and how many more may be opened at once. A writer waiting for
its turn (``one_writer_at_a_time``) holds its connection, so with SQLAlchemy's default of 5 + 10
fifty uploads' confirmations emptied the pool and a reviewer's read (which WAL lets run beside
the writer) waited for a connection; every connection opened past the pool was also closed
again at once, its pragmas run anew the next time. The API runs up to 40 + 8 request threads
and the background worker a few: 64 covers them all, 16 stay open."""


class CompileOnce:
    """SQLAlchemy's cache of compiled statements (the ``compiled_cache`` execution option),
    where one thread compiles a statement not yet cached while the others that want it wait
    for that form instead of each compiling it too.

    Compiling is pure Python, so threads compiling side by side only take turns at the GIL.
    A server's first burst of requests (a shift's devices docking at once, reviewers opening
    their cases) met an empty cache, and every thread compiled the same few statements: most
    of that burst's CPU. A thread waits at most ``wait_s`` from when the first began: past
    that (the first failed, or is slow), it compiles the statement itself."""

    def __init__(self, size: int = 500, wait_s: float = 0.5) -> None:
        self._cache: LRUCache[Any, Any] = LRUCache(size)
        self._compiling: dict[Any, tuple[threading.Event, float, int]] = {}
        self._guard = threading.Lock()
        self.wait_s = wait_s

    def get(self, key: Any, default: Any = None) -> Any:
        found = self._cache.get(key)
        if found is not None:
            return found
        me = threading.get_ident()
        with self._guard:
            found = self._cache.get(key)
            if found is not None:
                return found
            compiling = self._compiling.get(key)
            if compiling is None or compiling[2] == me:
                left = 0.0
            else:
                done, since, _ = compiling
                left = since + self.wait_s - time.monotonic()
            if left <= 0:  # this thread compiles it, then stores it (``__setitem__``)
                self._compiling[key] = (threading.Event(), time.monotonic(), me)
                return default
        done.wait(left)
        found = self._cache.get(key)
        return default if found is None else found

    def __setitem__(self, key: Any, value: Any) -> None:
        with self._guard:
            self._cache[key] = value
            compiling = self._compiling.pop(key, None)
        if compiling is not None:
            compiling[0].set()

    def __len__(self) -> int:
        return len(self._cache)


def make_engine(url: str, *, busy_s: float = SQLITE_BUSY_S, queue_writers: bool = True) -> Engine:
    """The catalogue's engine; ``busy_s``: how long a SQLite writer waits for its turn;
    ``queue_writers`` False: SQLite's busy handler alone (``bench/sqlite_writers.py``)."""
    compiled = {"compiled_cache": CompileOnce()}
    if url.startswith("sqlite"):
        path = url.partition(":///")[2]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": busy_s},
            pool_size=SQLITE_POOL,
            max_overflow=SQLITE_OVERFLOW,
            execution_options=compiled,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        if queue_writers:
            one_writer_at_a_time(engine, busy_s)
        return engine
    return create_engine(url, pool_pre_ping=True, execution_options=compiled)


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def one_writer_at_a_time(engine: Engine, timeout_s: float) -> None:
    """Queue this process's SQLite writers on one lock, taken at a transaction's first write
    and given back when its connection returns to the pool (after its commit or rollback).

    SQLite lets one writer in at a time; the others wait in its busy handler, which sleeps and
    retries with growing naps (up to 100 ms each), so under many writers (uploads' chunks,
    reviewers' audit events, the pipeline) a waiter can miss many turns: 2 s p99 for a 4 ms
    commit. Waiting on a lock instead, each is let in as soon as the one before it is done.
    Nothing changes in what is written or when it is durable (``synchronous=FULL``)."""
    lock = threading.Lock()

    @event.listens_for(engine, "before_cursor_execute")
    def _take(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        info = conn.connection.info  # per pooled DBAPI connection
        if info.get("vigil_writer") or not statement.lstrip().upper().startswith(_WRITES):
            return
        if not lock.acquire(timeout=timeout_s):
            raise OperationalError(statement[:80], None, TimeoutError("database is locked"))
        info["vigil_writer"] = True

    @event.listens_for(engine, "checkin")
    def _give_back(_dbapi_connection: Any, record: Any) -> None:
        if record.info.pop("vigil_writer", False):
            lock.release()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (the same migrations on every backend).

    Several workers start at once: on PostgreSQL an advisory lock, held for the transaction,
    lets one migrate while the others wait and then find nothing to do.
    """
    cfg = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def head_revision() -> str:
    """The newest migration's revision: what a migrated catalogue's alembic_version holds."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return head


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def insert_ignore(session: Session, table: Table, values: dict[str, object]) -> bool:
    """INSERT that does nothing if a unique key is taken; True if a row was written.

    Whether a row was written is read from RETURNING: the row count of ON CONFLICT DO NOTHING
    is -1 on PostgreSQL's driver.
    """
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - other backends are not supported
        stmt = insert(table).values(**values)
    result = session.execute(stmt.returning(*table.primary_key.columns))
    return result.first() is not None
