"""Each segment's packet ranges in the original (issue 18): per stream, the first packet, how
many, and their digest, as its ``segment.stored`` event signs them (JSON).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("segments", sa.Column("packets", sa.Text()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE segments DROP COLUMN packets")
    else:
        op.drop_column("segments", "packets")
