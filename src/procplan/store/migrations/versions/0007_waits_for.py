"""What a pending job waits for (issue #19: "the job(s) or booking it waits for").

``jobs.waits_for`` holds the planner's ``core.jobs.Blockers`` of a pending job as JSON (the
ids of the jobs and bookings in its way), written with its reason and estimate; NULL when
nothing is known. Existing rows start with NULL; the next cycle fills it in.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Added in place (no batch copy: claims reference jobs, see 0005's ``_drop_column``).
    op.add_column("jobs", sa.Column("waits_for", sa.Text, nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE jobs DROP COLUMN waits_for")
    else:
        op.drop_column("jobs", "waits_for")
