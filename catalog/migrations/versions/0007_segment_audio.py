"""Audio fingerprints: each segment's per-track audio fingerprint blob (issue 16).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("segments", sa.Column("audio", sa.LargeBinary()))
    op.add_column("recordings", sa.Column("audio_tracks", sa.Integer()))


def downgrade() -> None:
    for table, column in (("recordings", "audio_tracks"), ("segments", "audio")):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
