"""Initial schema: nodes, GPUs, users, bookings, claims, meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("retired", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_nodes"),
        sa.UniqueConstraint("id", name="uq_nodes_id"),
    )
    op.create_table(
        "gpus",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("node_pk", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("uuid", sa.String(128), nullable=True),
        sa.Column("memory_mb", sa.Integer, nullable=True),
        sa.Column("retired", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_gpus"),
        sa.UniqueConstraint("id", name="uq_gpus_id"),
        sa.ForeignKeyConstraint(["node_pk"], ["nodes.pk"], name="fk_gpus_node_pk_nodes"),
    )
    op.create_table(
        "users",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node_pk", sa.Integer, nullable=False),
        sa.Column("user_pk", sa.Integer, nullable=False),
        sa.Column("label", sa.String(256), nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_s", sa.BigInteger, nullable=False),
        sa.Column("end_s", sa.BigInteger, nullable=False),
        sa.Column("gpu_ids", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bookings"),
        sa.ForeignKeyConstraint(["node_pk"], ["nodes.pk"], name="fk_bookings_node_pk_nodes"),
        sa.ForeignKeyConstraint(["user_pk"], ["users.pk"], name="fk_bookings_user_pk_users"),
    )
    op.create_index("ix_bookings_node_start", "bookings", ["node_pk", "start_s"])
    op.create_index("ix_bookings_start", "bookings", ["start_s"])
    op.create_index("ix_bookings_user", "bookings", ["user_pk"])
    op.create_index("ix_bookings_version", "bookings", ["version"])
    op.create_table(
        "claims",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("booking_id", sa.Integer, nullable=False),
        sa.Column("gpu_pk", sa.Integer, nullable=False),
        sa.Column("start_s", sa.BigInteger, nullable=False),
        sa.Column("end_s", sa.BigInteger, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_claims"),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name="fk_claims_booking_id_bookings",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["gpu_pk"], ["gpus.pk"], name="fk_claims_gpu_pk_gpus"),
    )
    op.create_index("ix_claims_gpu_start", "claims", ["gpu_pk", "start_s"])
    op.create_index("ix_claims_booking", "claims", ["booking_id"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.bulk_insert(
        sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.BigInteger)),
        [
            {"key": "topology_version", "value": 0},
            {"key": "ledger_version", "value": 0},
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        # Rule 1 of the ledger, enforced by the database itself: two active booking claims
        # on one GPU never overlap, whatever the application does.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE claims ADD CONSTRAINT claims_no_overlap EXCLUDE USING gist "
            "(gpu_pk WITH =, int8range(start_s, end_s) WITH &&) WHERE (active)"
        )


def downgrade() -> None:
    for table in ("claims", "bookings", "users", "gpus", "nodes", "meta"):
        op.drop_table(table)
