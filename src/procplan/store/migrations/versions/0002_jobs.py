"""Jobs and tenants (issue #3, ADR 0005): tenants, memberships, jobs; claims of jobs.

A claim now belongs to a booking or to a job (exactly one). On PostgreSQL the exclusion
constraint of rule 1 is narrowed to booking claims and a twin guards job claims: two running
jobs never hold one GPU at once, while a job over a booking is legal in some cases (the
booking's owner, or an open-ended job that will be preempted) and is checked in code.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_EXCLUDE = (
    "ALTER TABLE claims ADD CONSTRAINT {name} EXCLUDE USING gist "
    "(gpu_pk WITH =, int8range(start_s, end_s) WITH &&) WHERE ({where})"
)


def upgrade() -> None:
    _create_tenants()
    _create_jobs()
    with op.batch_alter_table("claims") as batch:
        batch.alter_column("booking_id", existing_type=sa.Integer, nullable=True)
        batch.add_column(sa.Column("job_id", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_claims_job_id_jobs", "jobs", ["job_id"], ["id"])
        batch.create_check_constraint(
            "ck_claims_one_owner", "(booking_id IS NULL) <> (job_id IS NULL)"
        )
        batch.create_index("ix_claims_job", ["job_id"])
    op.bulk_insert(
        sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.BigInteger)),
        [{"key": "jobs_version", "value": 0}],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE claims DROP CONSTRAINT claims_no_overlap")
        op.execute(
            _EXCLUDE.format(name="claims_no_overlap", where="active AND booking_id IS NOT NULL")
        )
        op.execute(
            _EXCLUDE.format(name="job_claims_no_overlap", where="active AND job_id IS NOT NULL")
        )


def _create_tenants() -> None:
    op.create_table(
        "tenants",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("email", sa.String(256), nullable=False),
        sa.Column("max_gpus", sa.Integer, nullable=True),
        sa.Column("max_jobs", sa.Integer, nullable=True),
        sa.Column("max_gpu_memory_mb", sa.Integer, nullable=True),
        sa.Column("max_cpu_cores", sa.Integer, nullable=True),
        sa.Column("max_memory_mb", sa.Integer, nullable=True),
        sa.Column("fair_share_weight", sa.Float, nullable=False),
        sa.Column("allow_borrow", sa.Boolean, nullable=False),
        sa.Column("allow_preemption", sa.Boolean, nullable=False),
        sa.Column("priority_tier", sa.Integer, nullable=False),
        sa.Column("usage_gpu_s", sa.Float, nullable=False),
        sa.Column("usage_at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_tenants"),
        sa.UniqueConstraint("id", name="uq_tenants_id"),
    )
    names = ["id", "email", "fair_share_weight", "allow_borrow", "allow_preemption"]
    names += ["priority_tier", "usage_gpu_s", "usage_at", "created_at"]
    tenants = sa.table("tenants", *(sa.column(name) for name in names))
    op.bulk_insert(
        tenants,
        [
            {
                "id": "default",
                "email": "",
                "fair_share_weight": 1.0,
                "allow_borrow": True,
                "allow_preemption": True,
                "priority_tier": 0,
                "usage_gpu_s": 0.0,
                "usage_at": 0,
                "created_at": 0,
            }
        ],
    )
    op.create_table(
        "memberships",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_pk", sa.Integer, nullable=False),
        sa.Column("user_pk", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_memberships"),
        sa.UniqueConstraint("tenant_pk", "user_pk", name="uq_memberships_tenant_user"),
        sa.ForeignKeyConstraint(
            ["tenant_pk"],
            ["tenants.pk"],
            name="fk_memberships_tenant_pk_tenants",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_pk"], ["users.pk"], name="fk_memberships_user_pk_users"),
    )
    op.create_index("ix_memberships_user", "memberships", ["user_pk"])


def _job_columns() -> list[sa.Column[object]]:
    nullable_int = ("gpu_memory_mb", "booking_id", "queue_position", "exit_code", "array_id")
    nullable_big = ("time_limit_s", "started_at", "ended_at", "preempt_at", "estimated_start")
    columns: list[sa.Column[object]] = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_pk", sa.Integer, nullable=False),
        sa.Column("tenant_pk", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("gpu_count", sa.Integer, nullable=False),
        sa.Column("nodes", sa.Integer, nullable=False),
        sa.Column("gpu_kind", sa.String(128), nullable=True),
        sa.Column("node_id", sa.String(128), nullable=True),
        sa.Column("submitted_at", sa.BigInteger, nullable=False),
        sa.Column("alloc_nodes", sa.Text, nullable=True),
        sa.Column("alloc_gpus", sa.Text, nullable=True),
        sa.Column("borrowed", sa.Boolean, nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("requeues", sa.Integer, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("workdir", sa.Text, nullable=True),
        sa.Column("env", sa.Text, nullable=False),
        sa.Column("stdout_path", sa.Text, nullable=True),
        sa.Column("stderr_path", sa.Text, nullable=True),
        sa.Column("array_index", sa.Integer, nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("host", sa.String(256), nullable=True),
        sa.Column("pid_started", sa.Float, nullable=True),
        sa.Column("lease_expires_at", sa.BigInteger, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("extra", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    ]
    columns += [sa.Column(name, sa.Integer, nullable=True) for name in nullable_int]
    columns += [sa.Column(name, sa.BigInteger, nullable=True) for name in nullable_big]
    return columns


def _create_jobs() -> None:
    op.create_table(
        "jobs",
        *_job_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.ForeignKeyConstraint(["user_pk"], ["users.pk"], name="fk_jobs_user_pk_users"),
        sa.ForeignKeyConstraint(["tenant_pk"], ["tenants.pk"], name="fk_jobs_tenant_pk_tenants"),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_index("ix_jobs_tenant_state", "jobs", ["tenant_pk", "state"])
    op.create_index("ix_jobs_user", "jobs", ["user_pk"])
    op.create_index("ix_jobs_array", "jobs", ["array_id"])
    op.create_index("ix_jobs_version", "jobs", ["version"])
    op.create_index("ix_jobs_lease", "jobs", ["lease_expires_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE claims DROP CONSTRAINT job_claims_no_overlap")
        op.execute("ALTER TABLE claims DROP CONSTRAINT claims_no_overlap")
    op.execute("DELETE FROM claims WHERE job_id IS NOT NULL")
    with op.batch_alter_table("claims") as batch:
        batch.drop_index("ix_claims_job")
        batch.drop_constraint("ck_claims_one_owner", type_="check")
        batch.drop_constraint("fk_claims_job_id_jobs", type_="foreignkey")
        batch.drop_column("job_id")
        batch.alter_column("booking_id", existing_type=sa.Integer, nullable=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_EXCLUDE.format(name="claims_no_overlap", where="active"))
    op.execute("DELETE FROM meta WHERE key = 'jobs_version'")
    for table in ("jobs", "memberships", "tenants"):
        op.drop_table(table)
