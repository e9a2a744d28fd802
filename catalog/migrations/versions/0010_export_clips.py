"""Export requests that ask for clips with Content Credentials (issue 19).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("export_requests", sa.Column("clips", sa.Boolean()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE export_requests DROP COLUMN clips")
    else:
        op.drop_column("export_requests", "clips")
