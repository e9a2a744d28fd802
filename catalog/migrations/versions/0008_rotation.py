"""Orientation: the clockwise turn that makes a recording's stored pixels upright (issue 17).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("recordings", sa.Column("rotation", sa.Integer()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE recordings DROP COLUMN rotation")
    else:
        op.drop_column("recordings", "rotation")
