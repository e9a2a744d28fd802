"""Supervision: devices in service (from the roster) and expected incidents to reconcile.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from catalog.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default (not an SQL expression) lets SQLite add the column in place: a batch
    # table rebuild would drop ``devices``, which recordings reference (foreign keys are on).
    # '1' is true on both backends, so existing devices are in service.
    with op.batch_alter_table("devices") as batch:
        batch.add_column(
            sa.Column("in_service", sa.Boolean(), nullable=False, server_default="1")
        )
    op.create_table(
        "incidents",
        sa.Column("incident_id", sa.String(64), primary_key=True),
        sa.Column("officer_id", sa.String(64), nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("end", UTCDateTime(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_incidents_officer_id", "incidents", ["officer_id"])
    op.create_index("ix_incidents_start", "incidents", ["start"])


def downgrade() -> None:
    op.drop_table("incidents")
    if op.get_bind().dialect.name == "sqlite":
        # In place (SQLite >= 3.35): a batch rebuild would drop the referenced ``devices``.
        op.execute("ALTER TABLE devices DROP COLUMN in_service")
    else:
        op.drop_column("devices", "in_service")
