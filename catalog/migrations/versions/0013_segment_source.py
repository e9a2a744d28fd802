"""A live segment's bytes in the original (issue 18): JSON ``{offset, size, sha256, shift_s}``,
as its ``segment.stored`` event signs them (``source``); None for a segment cut from it.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("segments", sa.Column("source", sa.Text(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE segments DROP COLUMN source")
    else:
        op.drop_column("segments", "source")
