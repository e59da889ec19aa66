"""The schema, as SQLAlchemy Core tables. Alembic migrations create it; tests may too.

Instants are BIGINT seconds since the epoch (UTC): no timezone conversions, cheap range
queries, and an ``int8range`` exclusion constraint on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# GPU ids are joined with the ASCII unit separator in ``bookings.gpu_ids`` so that views read
# one row per booking; topology validation forbids control characters in ids.
GPU_ID_SEPARATOR = "\x1f"

nodes = Table(
    "nodes",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("id", String(128), nullable=False, unique=True),
    Column("name", String(256), nullable=False),
    Column("position", Integer, nullable=False, default=0),
    Column("retired", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
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
    Column("gpu_ids", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # The ``ledger_version`` of the transaction that last wrote this row: lets every server
    # process bring its in-memory ledger up to date by reading only what changed.
    Column("version", BigInteger, nullable=False),
    Index("ix_bookings_node_start", "node_pk", "start_s"),
    Index("ix_bookings_start", "start_s"),
    Index("ix_bookings_user", "user_pk"),
    Index("ix_bookings_version", "version"),
)

claims = Table(
    "claims",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("booking_id", Integer, ForeignKey("bookings.id", ondelete="CASCADE"), nullable=False),
    Column("gpu_pk", Integer, ForeignKey("gpus.pk"), nullable=False),
    Column("start_s", BigInteger, nullable=False),
    Column("end_s", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Index("ix_claims_gpu_start", "gpu_pk", "start_s"),
    Index("ix_claims_booking", "booking_id"),
)

# Small key/value facts kept in the same transactions as the rows they describe:
# ``topology_version`` (bumped on every topology change so other processes reload) and
# ``ledger_version`` (bumped by every booking write; its row lock orders the versions by commit).
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
