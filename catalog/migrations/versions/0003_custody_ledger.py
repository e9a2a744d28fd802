"""Custody ledger: the Merkle log's leaf order and its signed tree heads, both append-only.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from catalog.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("ledger_leaves", "tree_heads")
APPEND_ONLY_SQLITE = """
CREATE TRIGGER {table}_no_{op} BEFORE {op} ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END
"""
APPEND_ONLY_PG_FUNC = """
CREATE OR REPLACE FUNCTION vigil_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql
"""
APPEND_ONLY_PG = """
CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION vigil_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "ledger_leaves",
        sa.Column("position", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column(
            "event_id", sa.Integer(), sa.ForeignKey("custody_events.id"), nullable=False
        ),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("sequenced_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_ledger_event"),
    )
    op.create_table(
        "tree_heads",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("object_key", sa.String(255), nullable=False),
        sa.Column("timestamp_token", sa.LargeBinary()),
    )
    op.create_index("ix_tree_heads_size", "tree_heads", ["size"])
    dialect = op.get_bind().dialect.name
    for table in TABLES:
        if dialect == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(APPEND_ONLY_SQLITE.format(table=table, op=verb))
        elif dialect == "postgresql":
            op.execute(APPEND_ONLY_PG_FUNC)
            op.execute(APPEND_ONLY_PG.format(table=table))


def downgrade() -> None:
    op.drop_table("tree_heads")
    op.drop_table("ledger_leaves")
