"""Node maintenance (issue #16 item 5, ADR 0020): drain, resume, remove.

A drained node keeps its row and gets the admin's reason, when and by whom
(``drain_reason``, ``drained_at``, ``drained_by``; ``drained_at`` not NULL means draining).
``removed_at`` marks a node an admin removed: it is also ``retired`` (history kept), and unlike
a node the configuration dropped it stays retired when a config or an agent names it again,
until ``procplan node resume``. Existing rows start neither drained nor removed.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = ("drain_reason", "drained_at", "drained_by", "removed_at")


def upgrade() -> None:
    # Added in place (no batch copy: gpus, bookings and node_status reference nodes).
    op.add_column("nodes", sa.Column("drain_reason", sa.String(256), nullable=True))
    op.add_column("nodes", sa.Column("drained_at", sa.BigInteger, nullable=True))
    op.add_column("nodes", sa.Column("drained_by", sa.String(128), nullable=True))
    op.add_column("nodes", sa.Column("removed_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    for column in COLUMNS[::-1]:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE nodes DROP COLUMN {column}")
        else:
            op.drop_column("nodes", column)
