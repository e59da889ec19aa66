"""Node agents (issue #4, ADR 0006): node source, node status, GPU history, job logs.

``nodes.source`` tells config nodes (the JSON config or ``--demo``) from nodes an agent
registered, so a config reload retires only the former. Existing rows are config nodes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_METRICS = ("util", "mem_used", "temp", "power")


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(
            sa.Column("source", sa.String(16), nullable=False, server_default="config")
        )
    _create_node_status()
    _create_gpu_history()
    _create_job_logs()


def _create_node_status() -> None:
    op.create_table(
        "node_status",
        sa.Column("node_pk", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("session", sa.String(64), nullable=False),
        sa.Column("hostname", sa.String(256), nullable=False),
        sa.Column("address", sa.String(256), nullable=False),
        sa.Column("interval_s", sa.Float, nullable=False),
        sa.Column("registered_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("offline_since", sa.BigInteger, nullable=True),
        sa.Column("agent", sa.Text, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("node_pk", name="pk_node_status"),
        sa.ForeignKeyConstraint(["node_pk"], ["nodes.pk"], name="fk_node_status_node_pk_nodes"),
    )


def _create_gpu_history() -> None:
    metrics: list[sa.Column[object]] = []
    for name in _METRICS:
        metrics += [
            sa.Column(f"{name}_sum", sa.Float, nullable=False, server_default="0"),
            sa.Column(f"{name}_n", sa.Integer, nullable=False, server_default="0"),
            sa.Column(f"{name}_max", sa.Float, nullable=True),
        ]
    op.create_table(
        "gpu_history",
        sa.Column("gpu_pk", sa.Integer, nullable=False),
        sa.Column("step_s", sa.Integer, nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        *metrics,
        sa.PrimaryKeyConstraint("gpu_pk", "step_s", "bucket", name="pk_gpu_history"),
        sa.ForeignKeyConstraint(["gpu_pk"], ["gpus.pk"], name="fk_gpu_history_gpu_pk_gpus"),
    )
    op.create_index("ix_gpu_history_step_bucket", "gpu_history", ["step_s", "bucket"])


def _create_job_logs() -> None:
    op.create_table(
        "job_logs",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_job_logs"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_job_logs_job_id_jobs"),
    )
    op.create_index("ix_job_logs_chunk", "job_logs", ["job_id", "run", "stream", "offset"])
    op.create_table(
        "job_log_heads",
        sa.Column("job_id", sa.Integer, nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("stream", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("truncated", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "run", "stream", name="pk_job_log_heads"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_job_log_heads_job_id_jobs"),
    )


def downgrade() -> None:
    for table in ("job_log_heads", "job_logs", "gpu_history", "node_status"):
        op.drop_table(table)
    # Agent-registered nodes stay as ordinary nodes: bookings and claims may refer to them.
    # SQLite drops the column in place (3.35+): a batch copy of ``nodes`` would have to drop
    # a table that other tables reference, which ``foreign_keys=ON`` forbids.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE nodes DROP COLUMN source")
    else:
        op.drop_column("nodes", "source")
