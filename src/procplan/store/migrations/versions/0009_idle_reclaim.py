"""Idle reclaim of booked GPUs (issue #14, ADR 0013).

Bookings get their idle state (``idle_since``, ``idle_warned_at``), the owner's answer
(``idle_keep``) and the reason the leader released them (``released_reason``); tenants an
override of the cluster's ``idle_reclaim`` setting (NULL: follow the cluster). Existing rows
start not idle, not kept, following the cluster.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BOOKING_COLUMNS = ("idle_since", "idle_warned_at", "idle_keep", "released_reason")


def upgrade() -> None:
    # Added in place (no batch copy: claims reference bookings, see 0005's ``_drop_column``).
    op.add_column("bookings", sa.Column("idle_since", sa.BigInteger, nullable=True))
    op.add_column("bookings", sa.Column("idle_warned_at", sa.BigInteger, nullable=True))
    op.add_column(
        "bookings",
        sa.Column("idle_keep", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.add_column("bookings", sa.Column("released_reason", sa.Text, nullable=True))
    op.add_column("tenants", sa.Column("idle_reclaim", sa.Boolean, nullable=True))


def downgrade() -> None:
    columns = [("tenants", "idle_reclaim")] + [("bookings", c) for c in BOOKING_COLUMNS[::-1]]
    for table, column in columns:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
