"""Engine creation and migrations, for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, create_engine, event, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x5669_6769_6C00  # "Vigil": the advisory lock key of schema migrations


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.partition(":///")[2]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


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
