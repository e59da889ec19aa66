"""The schema, as SQLAlchemy Core tables. Alembic migrations create it; tests may too.

Instants are BIGINT seconds since the epoch (UTC): no timezone conversions, cheap range
queries, and an ``int8range`` exclusion constraint on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import postgresql, sqlite

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# Ids are joined with the ASCII unit separator in ``jobs.alloc_nodes`` and in the allocation
# that reads aggregate from claims (``claimed_gpus``: each entry is the claim's position, the
# record separator, the GPU id); topology validation forbids control characters in ids.
GPU_ID_SEPARATOR = "\x1f"
POSITION_SEPARATOR = "\x1e"

nodes = Table(
    "nodes",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(128), nullable=False, unique=True),
    Column("name", String(256), nullable=False),
    Column("position", Integer, nullable=False, default=0),
    Column("retired", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    # 'config' (the JSON config or --demo names it) or 'agent' (an agent registered it): a
    # config reload retires only config nodes it no longer names (ADR 0006).
    Column("source", String(16), nullable=False, default="config", server_default="config"),
    # Maintenance (ADR 0020): drained (no new starts or bookings) since ``drained_at``, why
    # and by whom; ``removed_at``: an admin removed it (also ``retired``, kept so until resume).
    Column("drain_reason", String(256), nullable=True),
    Column("drained_at", BigInteger, nullable=True),
    Column("drained_by", String(128), nullable=True),
    Column("removed_at", BigInteger, nullable=True),
)

gpus = Table(
    "gpus",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(128), nullable=False, unique=True),
    Column("node_pk", Integer, ForeignKey("nodes.pk"), nullable=False),
    Column("position", Integer, nullable=False, default=0),
    Column("kind", String(128), nullable=False),
    Column("uuid", String(128), nullable=True),
    Column("memory_mb", Integer, nullable=True),
    Column("retired", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    # Issue #12: 'admin' or 'user'; the Unix account batch jobs run as; an argon2 hash.
    Column("role", String(16), nullable=False, default="user", server_default="user"),
    Column("unix_user", String(128), nullable=True),
    Column("password_hash", Text, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False, server_default=false()),
)

# API tokens and web sessions: only the SHA-256 of the secret is kept (it is 256 random bits,
# so a fast hash is enough; passwords get argon2).
credentials = Table(
    "credentials",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("user_pk", Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # 'token', 'session' or 'link'
    Column("name", String(256), nullable=False, default=""),
    Column("digest", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
    Index("ix_credentials_user", "user_pk"),
)

# Who created, changed, released or cancelled what (``as_admin``: on someone else's object).
audit = Table(
    "audit",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256), nullable=False),
    Column("owner", String(128), nullable=True),
    Column("as_admin", Boolean, nullable=False, default=False),
    Column("via", String(16), nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
    Index("ix_audit_at", "at"),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node_pk", Integer, ForeignKey("nodes.pk"), nullable=False),
    Column("user_pk", Integer, ForeignKey("users.pk"), nullable=False),
    Column("label", String(256), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_s", BigInteger, nullable=False),
    Column("end_s", BigInteger, nullable=False),
    # Its GPUs are its claims, in ``claims.position`` order (ADR 0010, item 8).
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # The ``ledger_version`` of the transaction that last wrote this row: lets every server
    # process bring its in-memory ledger up to date by reading only what changed.
    Column("version", BigInteger, nullable=False),
    # Idle reclaim (migration 0009, ADR 0013): idle since, warned at, the owner's "keep",
    # and why the leader released it. Not ledger state: writing them bumps no version.
    Column("idle_since", BigInteger, nullable=True),
    Column("idle_warned_at", BigInteger, nullable=True),
    Column("idle_keep", Boolean, nullable=False, default=False, server_default=false()),
    Column("released_reason", Text, nullable=True),
    Index("ix_bookings_node_start", "node_pk", "start_s"),
    Index("ix_bookings_start", "start_s"),
    Index("ix_bookings_user", "user_pk"),
    Index("ix_bookings_version", "version"),
)

tenants = Table(
    "tenants",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(128), nullable=False, unique=True),
    Column("email", String(256), nullable=False, default=""),
    # Quotas: NULL means unlimited.
    Column("max_gpus", Integer, nullable=True),
    Column("max_jobs", Integer, nullable=True),
    Column("max_gpu_memory_mb", Integer, nullable=True),
    Column("max_cpu_cores", Integer, nullable=True),
    Column("max_memory_mb", Integer, nullable=True),
    Column("fair_share_weight", Float, nullable=False, default=1.0),
    Column("allow_borrow", Boolean, nullable=False, default=True),
    Column("allow_preemption", Boolean, nullable=False, default=True),
    Column("priority_tier", Integer, nullable=False, default=0),
    # Finished work in GPU-seconds, decayed to ``usage_at`` (``core.fairshare``).
    Column("usage_gpu_s", Float, nullable=False, default=0.0),
    Column("usage_at", BigInteger, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    # Idle reclaim for its members' bookings (ADR 0013): NULL follows the cluster setting.
    Column("idle_reclaim", Boolean, nullable=True),
)

memberships = Table(
    "memberships",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("tenant_pk", Integer, ForeignKey("tenants.pk", ondelete="CASCADE"), nullable=False),
    Column("user_pk", Integer, ForeignKey("users.pk"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("manager", Boolean, nullable=False, default=False, server_default=false()),
    UniqueConstraint("tenant_pk", "user_pk", name="uq_memberships_tenant_user"),
    Index("ix_memberships_user", "user_pk"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_pk", Integer, ForeignKey("users.pk"), nullable=False),
    Column("tenant_pk", Integer, ForeignKey("tenants.pk"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("gpu_count", Integer, nullable=False),
    Column("nodes", Integer, nullable=False),
    Column("gpu_kind", String(128), nullable=True),
    Column("gpu_memory_mb", Integer, nullable=True),
    Column("time_limit_s", BigInteger, nullable=True),
    Column("node_id", String(128), nullable=True),  # a pin (constraint), not a foreign key
    Column("booking_id", Integer, nullable=True),
    Column("submitted_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    # Node ids of the allocation, joined with GPU_ID_SEPARATOR. Its GPUs are its claims of the
    # current run (``claims.run = requeues``, in ``position`` order); the nodes stay here
    # because a CPU-only batch job is placed on a node but claims no GPU: a node placement is
    # not a GPU claim.
    Column("alloc_nodes", Text, nullable=True),
    Column("borrowed", Boolean, nullable=False, default=False),
    Column("preempt_at", BigInteger, nullable=True),
    Column("reason", String(32), nullable=True),
    Column("estimated_start", BigInteger, nullable=True),
    Column("queue_position", Integer, nullable=True),
    # What a pending job waits for (``core.jobs.Blockers``) as JSON, or NULL for nothing
    # known (migration 0007).
    Column("waits_for", Text, nullable=True),
    Column("exit_code", Integer, nullable=True),
    Column("requeues", Integer, nullable=False, default=0),
    Column("command", Text, nullable=False),  # JSON list of strings
    Column("workdir", Text, nullable=True),
    Column("env", Text, nullable=False),  # JSON list of [name, value] pairs (order kept)
    Column("stdout_path", Text, nullable=True),
    Column("stderr_path", Text, nullable=True),
    Column("array_id", Integer, nullable=True),
    Column("array_index", Integer, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("host", String(256), nullable=True),
    Column("pid_started", Float, nullable=True),  # process create time: PID reuse detection
    Column("lease_expires_at", BigInteger, nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("extra", Text, nullable=False),  # JSON object
    # The ``jobs_version`` of the transaction that last changed this row (see JobMirror).
    Column("version", BigInteger, nullable=False),
    # Preemption history, kept across requeues (migration 0006, ADR 0011).
    Column("preemptions", Integer, nullable=False, default=0, server_default="0"),
    Column("preempted_by", Integer, nullable=True),
    Column("last_preempted_at", BigInteger, nullable=True),
    Index("ix_jobs_state", "state"),
    Index("ix_jobs_tenant_state", "tenant_pk", "state"),
    Index("ix_jobs_user", "user_pk"),
    Index("ix_jobs_array", "array_id"),
    Index("ix_jobs_version", "version"),
    # Only live interactive jobs keep a lease (it is cleared when a job ends).
    Index("ix_jobs_lease", "lease_expires_at"),
)

# A claim belongs to a booking or to a running job, never both (ADR 0005). Claims are the only
# record of which GPUs a booking or job holds (ADR 0010, item 8) and are never deleted: cancel
# and finish deactivate them, release and finish truncate ``end_s``. ``position`` is the GPU's
# place in its owner's allocation (the order the API shows); ``run`` is, for a job claim, the
# job's ``requeues`` when it started (a requeued job claims anew on its next start, the older
# runs' claims stay as history; -1 for an older run's claim backfilled by migration 0005),
# NULL for a booking claim.
claims = Table(
    "claims",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("booking_id", Integer, ForeignKey("bookings.id", ondelete="CASCADE"), nullable=True),
    Column("gpu_pk", Integer, ForeignKey("gpus.pk"), nullable=False),
    Column("start_s", BigInteger, nullable=False),
    Column("end_s", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=True),
    Column("position", SmallInteger, nullable=False),
    Column("run", Integer, nullable=True),
    CheckConstraint("(booking_id IS NULL) <> (job_id IS NULL)", name="ck_claims_one_owner"),
    Index("ix_claims_gpu_start", "gpu_pk", "start_s"),
    Index("ix_claims_booking", "booking_id"),
    Index("ix_claims_job", "job_id"),
)

# Small key/value facts kept in the same transactions as the rows they describe:
# ``topology_version`` (bumped on every topology change so other processes reload),
# ``ledger_version`` (bumped by every booking write; its row lock orders the versions by commit)
# and ``jobs_version`` (the same for job and tenant writes).
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# The live state of a node that has (or had) an agent: one row per node, written behind by the
# server processes the agent talks to (ADR 0006 §4). ``agent`` and ``report`` are JSON objects;
# ``report`` is opaque to the store (the service's latest readings, processes, flags).
node_status = Table(
    "node_status",
    metadata,
    Column("node_pk", Integer, ForeignKey("nodes.pk"), primary_key=True, autoincrement=False),
    Column("session", String(64), nullable=False),
    Column("hostname", String(256), nullable=False),
    Column("address", String(256), nullable=False),
    Column("interval_s", Float, nullable=False),
    Column("registered_at", BigInteger, nullable=False),
    Column("last_seen", Float, nullable=False),  # server receive time, epoch seconds
    Column("online", Boolean, nullable=False),
    Column("offline_since", BigInteger, nullable=True),
    Column("agent", Text, nullable=False),
    Column("report", Text, nullable=False),
)

# Per-GPU aggregates of readings: minute rows (step 60) merged by upsert from every server
# process, rolled up into hourly rows (step 3600) by the leader (ADR 0006 §5). For each metric,
# ``_n`` counts the readings that had it, so a mean is ``_sum / _n``.
HISTORY_METRICS = ("util", "mem_used", "temp", "power")


def _metric_columns() -> list[Column[Any]]:
    columns: list[Column[Any]] = []
    for name in HISTORY_METRICS:
        columns += [
            Column(f"{name}_sum", Float, nullable=False, default=0.0, server_default="0"),
            Column(f"{name}_n", Integer, nullable=False, default=0, server_default="0"),
            Column(f"{name}_max", Float, nullable=True),
        ]
    return columns


gpu_history = Table(
    "gpu_history",
    metadata,
    Column("gpu_pk", Integer, ForeignKey("gpus.pk"), nullable=False),
    Column("step_s", Integer, nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("n", Integer, nullable=False),
    *_metric_columns(),
    PrimaryKeyConstraint("gpu_pk", "step_s", "bucket", name="pk_gpu_history"),
    Index("ix_gpu_history_step_bucket", "step_s", "bucket"),
)

# Job logs shipped by agents: chunks as appended, and one head per (job, run, stream) holding
# the size stored so far (the offset the next chunk must start at) and the truncation flag.
job_logs = Table(
    "job_logs",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("run", Integer, nullable=False),
    Column("stream", String(8), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_job_logs_chunk", "job_id", "run", "stream", "offset"),
)

job_log_heads = Table(
    "job_log_heads",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("run", Integer, nullable=False),
    Column("stream", String(8), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("truncated", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("job_id", "run", "stream", name="pk_job_log_heads"),
)


# Notifications (migration 0008, ADR 0012). A channel is an apprise URL (it may hold a secret:
# never shown back whole) of one user, or of the cluster when ``user_pk`` is NULL (admins
# set those); ``events`` is a comma-separated list of event kinds or "*".
notify_channels = Table(
    "notify_channels",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("user_pk", Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("label", String(128), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("last_sent_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", BigInteger, nullable=True),
    Index("ix_notify_channels_user", "user_pk"),
)

# The transactional outbox: one row per event, written in the transaction of the change that
# causes it; ``key`` deduplicates (an event already written is not written again). The
# recipient is ``user_pk`` (NULL: the admins). ``done_at`` is set once every channel's
# delivery ended (sent, or given up).
outbox = Table(
    "outbox",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("user_pk", Integer, ForeignKey("users.pk", ondelete="CASCADE"), nullable=True),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("done_at", BigInteger, nullable=True),
    Index("ix_outbox_done", "done_at", "pk"),
)

# One event's delivery to one channel: at least once, retried with backoff until sent or
# given up (``sent_at`` set, or ``attempts`` at the limit with ``error``).
notify_deliveries = Table(
    "notify_deliveries",
    metadata,
    Column("outbox_pk", Integer, ForeignKey("outbox.pk", ondelete="CASCADE"), nullable=False),
    Column(
        "channel_pk", Integer, ForeignKey("notify_channels.pk", ondelete="CASCADE"), nullable=False
    ),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    PrimaryKeyConstraint("outbox_pk", "channel_pk", name="pk_notify_deliveries"),
)


def upsert_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` of the dialect that offers ``on_conflict_do_update/nothing`` (SQLite and
    PostgreSQL spell it the same way); upserts keep concurrent writers from racing."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
