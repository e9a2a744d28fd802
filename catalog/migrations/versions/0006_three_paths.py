"""Three paths: keyframe hashes on the custody path, review proxies on the transcode path.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain nullable columns: SQLite adds them in place (no batch rebuild of referenced tables).
    op.add_column("segments", sa.Column("keyframes", sa.Text()))
    op.add_column("recordings", sa.Column("proxy_playlist_key", sa.String(255)))
    op.add_column("recordings", sa.Column("proxy_playlist_sha256", sa.String(64)))
    op.create_table(
        "proxy_segments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("recording_id", sa.String(32), sa.ForeignKey("recordings.id"), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.UniqueConstraint("recording_id", "index", name="uq_proxy_position"),
    )
    op.create_index("ix_proxy_segments_recording_id", "proxy_segments", ["recording_id"])


def downgrade() -> None:
    op.drop_table("proxy_segments")
    for table, column in (
        ("recordings", "proxy_playlist_sha256"),
        ("recordings", "proxy_playlist_key"),
        ("segments", "keyframes"),
    ):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
