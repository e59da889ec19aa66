"""Notifications (issue #14, ADR 0012): channels, the transactional outbox, deliveries.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_pk"], ["users.pk"], name=f"fk_{table}_user_pk_users", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "notify_channels",
        sa.Column("pk", sa.Integer, autoincrement=True),
        sa.Column("user_pk", sa.Integer, nullable=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_sent_at", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("last_error_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_notify_channels"),
        _user_fk("notify_channels"),
    )
    op.create_index("ix_notify_channels_user", "notify_channels", ["user_pk"])
    op.create_table(
        "outbox",
        sa.Column("pk", sa.Integer, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("user_pk", sa.Integer, nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("done_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("pk", name="pk_outbox"),
        _user_fk("outbox"),
        sa.UniqueConstraint("key", name="uq_outbox_key"),
    )
    op.create_index("ix_outbox_done", "outbox", ["done_at", "pk"])
    op.create_table(
        "notify_deliveries",
        sa.Column("outbox_pk", sa.Integer, nullable=False),
        sa.Column("channel_pk", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.BigInteger, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("outbox_pk", "channel_pk", name="pk_notify_deliveries"),
        sa.ForeignKeyConstraint(
            ["outbox_pk"],
            ["outbox.pk"],
            name="fk_notify_deliveries_outbox_pk_outbox",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["channel_pk"],
            ["notify_channels.pk"],
            name="fk_notify_deliveries_channel_pk_notify_channels",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("notify_deliveries")
    op.drop_index("ix_outbox_done", "outbox")
    op.drop_table("outbox")
    op.drop_index("ix_notify_channels_user", "notify_channels")
    op.drop_table("notify_channels")
