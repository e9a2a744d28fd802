"""Initial catalogue: devices, officers, recordings, segments, cases, links, custody events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from catalog.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_SQLITE = """
CREATE TRIGGER custody_events_no_{op} BEFORE {op} ON custody_events
BEGIN SELECT RAISE(ABORT, 'custody_events is append-only'); END
"""
APPEND_ONLY_PG_FUNC = """
CREATE OR REPLACE FUNCTION custody_events_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'custody_events is append-only'; END $$ LANGUAGE plpgsql
"""
APPEND_ONLY_PG = """
CREATE TRIGGER custody_events_no_update_delete BEFORE UPDATE OR DELETE ON custody_events
FOR EACH ROW EXECUTE FUNCTION custody_events_append_only()
"""


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "officers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(64)),
    )
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("original_key", sa.String(255), nullable=False),
        sa.Column("original_name", sa.String(255), nullable=False),
        sa.Column("device_id", sa.String(64), sa.ForeignKey("devices.id"), nullable=False),
        sa.Column("officer_id", sa.String(64), sa.ForeignKey("officers.id")),
        sa.Column("category", sa.String(64)),
        sa.Column("device_start", UTCDateTime()),
        sa.Column("device_clock_at_handover", UTCDateTime()),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("clock_offset_s", sa.Float()),
        sa.Column("gps_track", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("damage", sa.Text()),
        sa.Column("container", sa.String(64)),
        sa.Column("video_codec", sa.String(32)),
        sa.Column("audio_codec", sa.String(32)),
        sa.Column("width", sa.Integer()),
        sa.Column("height", sa.Integer()),
        sa.Column("fps", sa.Float()),
        sa.Column("frame_hold_s", sa.Float()),
        sa.Column("origin_s", sa.Float()),
        sa.Column("duration_s", sa.Float()),
        sa.Column("playback", sa.String(16)),
        sa.Column("segment_count", sa.Integer()),
        sa.Column("chain_head", sa.String(64)),
        sa.Column("playlist_key", sa.String(255)),
        sa.Column("playlist_sha256", sa.String(64)),
        sa.Column("phash_fps", sa.Float()),
    )
    op.create_index("ix_recordings_device_id", "recordings", ["device_id"])
    op.create_index("ix_recordings_officer_id", "recordings", ["officer_id"])
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("recording_id", sa.String(32), sa.ForeignKey("recordings.id"), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("holes", sa.Text()),
        sa.Column("chain", sa.String(64), nullable=False),
        sa.Column("phash", sa.LargeBinary()),
        sa.Column("phash_digest", sa.String(64)),
        sa.Column("phash_frames", sa.Integer()),
        sa.Column("verified_at", UTCDateTime()),
        sa.Column("verify_status", sa.String(32)),
        sa.UniqueConstraint("recording_id", "index", name="uq_segment_position"),
    )
    op.create_index("ix_segments_recording_id", "segments", ["recording_id"])
    op.create_table(
        "cases",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "case_links",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("recording_id", sa.String(32), sa.ForeignKey("recordings.id"), nullable=False),
        sa.Column("from_s", sa.Float()),
        sa.Column("to_s", sa.Float()),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.Column("unlinked_at", UTCDateTime()),
    )
    op.create_index("ix_case_links_case_id", "case_links", ["case_id"])
    op.create_index("ix_case_links_recording_id", "case_links", ["recording_id"])
    op.create_table(
        "custody_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("recording_id", sa.String(32)),
        sa.Column("case_id", sa.String(64)),
        sa.Column("reason", sa.Text()),
        sa.Column("detail", sa.Text()),
    )
    op.create_index("ix_custody_events_at", "custody_events", ["at"])
    op.create_index("ix_custody_events_action", "custody_events", ["action"])
    op.create_index("ix_custody_events_recording_id", "custody_events", ["recording_id"])
    op.create_index("ix_custody_events_case_id", "custody_events", ["case_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(APPEND_ONLY_SQLITE.format(op=verb))
    elif dialect == "postgresql":
        op.execute(APPEND_ONLY_PG_FUNC)
        op.execute(APPEND_ONLY_PG)


def downgrade() -> None:
    for table in ("custody_events", "case_links", "cases", "segments", "recordings"):
        op.drop_table(table)
    op.drop_table("officers")
    op.drop_table("devices")
