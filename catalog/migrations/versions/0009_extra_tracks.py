"""Subtitle, data and timecode tracks, and where custody keeps each (issue 17).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("recordings", sa.Column("extra_tracks", sa.Text()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE recordings DROP COLUMN extra_tracks")
    else:
        op.drop_column("recordings", "extra_tracks")
