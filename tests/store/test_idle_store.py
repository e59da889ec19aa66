"""Idle reclaim's columns (migration 0009, ADR 0013): the migration matches the tables, goes
down and up again, and the state written is the state read back."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from procplan.core.idle import IdleState
from procplan.core.model import BookingRequest
from procplan.core.topology import demo_topology
from procplan.store.bookings_repo import BookingStore
from procplan.store.engine import Store
from procplan.store.idle_repo import IdleStore
from procplan.store.migrate import alembic_config, upgrade
from procplan.store.tables import metadata
from procplan.store.topology_repo import sync_topology

NOW = 1_795_428_000
COLUMNS = ("'idle_since'", "'idle_warned_at'", "'idle_keep'", "'released_reason'", "'idle_reclaim'")


def _book(db: Store) -> int:
    with db.write() as conn:
        sync_topology(conn, demo_topology(), NOW)
    req = BookingRequest("node-a", NOW, NOW + 3600, "alice", "train", gpu_count=1)
    booking, _ = BookingStore(db).create(req, NOW, lambda node: None)
    return booking.id


def test_migration_matches_the_tables_and_goes_down_and_up(db: Store) -> None:
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if any(c in repr(d) for c in COLUMNS)] == []
    booking_id = _book(db)
    config = alembic_config()
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0008")
    inspector = sa.inspect(db.engine)
    assert "idle_since" not in {c["name"] for c in inspector.get_columns("bookings")}
    assert "idle_reclaim" not in {c["name"] for c in inspector.get_columns("tenants")}
    upgrade(db)
    assert IdleStore(db, BookingStore(db).writes).state(booking_id) == IdleState()


def test_state_round_trip(db: Store) -> None:
    booking_id = _book(db)
    idle = IdleStore(db, BookingStore(db).writes)
    state = IdleState(since=NOW, warned_at=NOW + 1800)
    idle.save([(booking_id, state, None)], NOW + 1800)
    assert idle.states([booking_id, 999]) == {booking_id: state}
    idle.forget_all()
    assert idle.state(booking_id) == IdleState()
    booking, kept = idle.keep(booking_id)
    assert (booking.id, kept, idle.state(booking_id)) == (booking_id, IdleState(keep=True), kept)
    assert idle.state(999) is None
    idle.save([(booking_id, IdleState(since=NOW), None)], NOW + 1800)  # the leader, late
    assert idle.state(booking_id) == IdleState(keep=True)  # the owner's keep stands
