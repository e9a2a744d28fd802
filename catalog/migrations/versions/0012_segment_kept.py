"""Whether a segment's copy is stored (issue 18): False when it is cut again from the original
whenever it is wanted, as its ``segment.stored`` event signs (``kept``).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "segments", sa.Column("kept", sa.Boolean(), nullable=False, server_default=sa.true())
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE segments DROP COLUMN kept")
    else:
        op.drop_column("segments", "kept")
