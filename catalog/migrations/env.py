"""Alembic environment: the connection is handed in by ``catalog.db.migrate``."""

from __future__ import annotations

from alembic import context

from catalog.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through catalog.db.migrate(), which passes a connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
