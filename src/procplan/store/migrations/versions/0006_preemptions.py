"""A job's preemption history (issue #19, ADR 0011).

``jobs.preemptions`` counts how often the planner preempted the job (the ``max_preemptions``
cap); ``jobs.preempted_by`` and ``jobs.last_preempted_at`` name the job it was last preempted
for and when (the thrash guard). All three survive a requeue. Existing jobs start from no
history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = ("last_preempted_at", "preempted_by", "preemptions")


def upgrade() -> None:
    # Added in place (no batch copy: claims reference jobs, see 0005's ``_drop_column``).
    op.add_column("jobs", sa.Column("preemptions", sa.Integer, nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("preempted_by", sa.Integer, nullable=True))
    op.add_column("jobs", sa.Column("last_preempted_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    for column in _COLUMNS:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
        else:
            op.drop_column("jobs", column)
