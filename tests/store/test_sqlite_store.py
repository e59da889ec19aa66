"""The SQLite store: connection pragmas, migrations, topology sync (retire / revive), window
queries that find long bookings, durability across engines, and the write lock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from procplan.core.bookings import BookingLimits
from procplan.core.errors import Conflict
from procplan.core.model import BookingRequest, BookingStatus, Gpu, Node, Topology
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.store.bookings_repo import BookingStore
from procplan.store.engine import Store, make_engine
from procplan.store.migrate import alembic_config, upgrade
from procplan.store.tables import gpus, meta, nodes
from procplan.store.topology_repo import load_topology, sync_topology, topology_version
from procplan.testing import FakeClock

FIXED_NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC
HOUR = 3600
DAY = 24 * HOUR
TABLES = {"nodes", "gpus", "users", "bookings", "claims", "meta", "alembic_version"}


@pytest.fixture
def service(store: Store) -> BookingService:
    built = BookingService(store, FakeClock(FIXED_NOW), BookingLimits())
    built.replace_topology(demo_topology())
    return built


def request(gpu_ids: tuple[str, ...], start: int, end: int, node: str = "node-a") -> BookingRequest:
    return BookingRequest(node_id=node, start=start, end=end, user="u", label="U", gpu_ids=gpu_ids)


def pragma(store: Store, name: str) -> object:
    with store.engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


# ----------------------------------------------------------------------------------- pragmas


def test_connection_pragmas(sqlite_url: str) -> None:
    store = Store(make_engine(sqlite_url, busy_timeout_ms=4321))
    try:
        assert store.is_sqlite
        assert str(pragma(store, "journal_mode")).lower() == "wal"
        assert pragma(store, "foreign_keys") == 1
        assert pragma(store, "busy_timeout") == 4321
        assert pragma(store, "synchronous") == 2  # FULL by default
    finally:
        store.dispose()


def test_default_busy_timeout_and_synchronous(sqlite_url: str) -> None:
    store = Store(make_engine(sqlite_url, synchronous="NORMAL"))
    try:
        assert pragma(store, "busy_timeout") == 10_000
        assert pragma(store, "synchronous") == 1
    finally:
        store.dispose()


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO gpus (id, node_pk, position, kind, retired, created_at) "
            "VALUES ('orphan', 9999, 0, 'x', 0, 0)"
        )


def test_write_transaction_holds_the_lock_from_its_start(sqlite_url: str, store: Store) -> None:
    """A write transaction excludes writers of other engines from its first statement on
    (``BEGIN IMMEDIATE`` / the writer gate), even before it has written anything; readers
    are never blocked (WAL)."""
    other = Store(make_engine(sqlite_url, busy_timeout_ms=5_000))
    entered = threading.Event()

    def second_writer() -> None:
        with other.write() as conn:
            entered.set()
            conn.execute(sa.update(meta).where(meta.c.key == "ledger_version").values(value=7))

    try:
        with store.write() as conn:
            conn.execute(sa.select(meta.c.value))  # only a read so far
            thread = threading.Thread(target=second_writer, daemon=True)
            thread.start()
            assert not entered.wait(0.3), "a second writer got in during an open write"
            with other.read() as reader:
                assert (
                    reader.execute(
                        sa.select(meta.c.value).where(meta.c.key == "ledger_version")
                    ).scalar_one()
                    == 0
                )
            conn.execute(sa.update(meta).where(meta.c.key == "ledger_version").values(value=3))
        thread.join(timeout=10)
        assert entered.is_set() and not thread.is_alive()
        with store.read() as reader:
            assert (
                reader.execute(
                    sa.select(meta.c.value).where(meta.c.key == "ledger_version")
                ).scalar_one()
                == 7
            )
    finally:
        other.dispose()


# -------------------------------------------------------------------------------- migrations


def test_migrations_are_idempotent(store: Store) -> None:
    upgrade(store)
    upgrade(store)
    assert set(sa.inspect(store.engine).get_table_names()) >= TABLES
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all() == [
            head
        ]
        facts = dict(conn.execute(sa.select(meta.c.key, meta.c.value)).all())
    assert facts == {"ledger_version": 0, "topology_version": 0, "jobs_version": 0}


def test_migration_keeps_data(store: Store, service: BookingService) -> None:
    booking = service.create(
        request(("node-a-gpu0",), FIXED_NOW, FIXED_NOW + HOUR), whole_hours=True
    )
    upgrade(store)
    assert BookingStore(store).get(booking.id) == booking


# ------------------------------------------------------------------------------ topology sync


def gpu_rows(store: Store) -> dict[str, tuple[int, bool, int]]:
    with store.read() as conn:
        rows = conn.execute(sa.select(gpus.c.id, gpus.c.pk, gpus.c.retired, gpus.c.node_pk))
        return {gpu_id: (pk, bool(retired), node_pk) for gpu_id, pk, retired, node_pk in rows}


def node_rows(store: Store) -> dict[str, tuple[int, bool]]:
    with store.read() as conn:
        rows = conn.execute(sa.select(nodes.c.id, nodes.c.pk, nodes.c.retired))
        return {node_id: (pk, bool(retired)) for node_id, pk, retired in rows}


def test_topology_sync_retires_and_revives_with_the_same_primary_key(
    store: Store, service: BookingService
) -> None:
    demo = demo_topology()
    before_gpus, before_nodes = gpu_rows(store), node_rows(store)
    with store.read() as conn:
        assert load_topology(conn) == demo
        version = topology_version(conn)
    booking = service.create(
        request(("node-a-gpu3",), FIXED_NOW + HOUR, FIXED_NOW + 3 * HOUR), whole_hours=True
    )

    node_a = demo.nodes[0]
    smaller = Topology((Node(node_a.id, node_a.name, node_a.gpus[:3]),))
    with store.write() as conn:
        sync_topology(conn, smaller, FIXED_NOW)
    with store.read() as conn:
        assert load_topology(conn) == smaller
        assert topology_version(conn) == version + 1
    after = gpu_rows(store)
    assert after["node-a-gpu3"] == (
        before_gpus["node-a-gpu3"][0],
        True,
        before_gpus["node-a-gpu3"][2],
    )
    assert all(after[g][1] for g in after if g.startswith("node-b"))
    assert node_rows(store)["node-b"] == (before_nodes["node-b"][0], True)
    # The retired GPU's booking is history, still readable.
    assert BookingStore(store).get(booking.id) == booking
    assert service.topology() == smaller

    with store.write() as conn:
        sync_topology(conn, demo, FIXED_NOW + HOUR)
    assert gpu_rows(store) == before_gpus
    assert node_rows(store) == before_nodes
    with store.read() as conn:
        assert load_topology(conn) == demo
    # Revived with its claims: the booking still holds the GPU.
    with pytest.raises(Conflict):
        service.create(
            request(("node-a-gpu3",), FIXED_NOW + 2 * HOUR, FIXED_NOW + 4 * HOUR), whole_hours=True
        )


def test_topology_sync_moves_and_reorders_keeping_keys(
    store: Store, service: BookingService
) -> None:
    before = gpu_rows(store)
    moved = Topology(
        (
            Node("node-b", "B", (Gpu("node-b-gpu1", "H100"), Gpu("node-a-gpu0", "A100"))),
            Node("node-a", "A", (Gpu("node-a-gpu1", "A100"),)),
        )
    )
    with store.write() as conn:
        sync_topology(conn, moved, FIXED_NOW)
        loaded = load_topology(conn)
    assert [n.id for n in loaded.nodes] == ["node-b", "node-a"]
    assert [g.id for g in loaded.nodes[0].gpus] == ["node-b-gpu1", "node-a-gpu0"]
    assert [g.index for g in loaded.nodes[0].gpus] == [0, 1]
    after = gpu_rows(store)
    assert after["node-a-gpu0"][0] == before["node-a-gpu0"][0]
    assert after["node-a-gpu0"][2] == node_rows(store)["node-b"][0]


# ---------------------------------------------------------------------------- window queries


def test_window_finds_long_bookings_that_started_long_before(
    store: Store, service: BookingService
) -> None:
    start = FIXED_NOW  # 2026-11-23 10:00
    long = service.create(request(("node-a-gpu0",), start, start + 20 * DAY), whole_hours=True)
    short = service.create(request(("node-a-gpu1",), start, start + 2 * HOUR), whole_hours=True)
    repo = BookingStore(store)
    day_10 = start - 10 * HOUR + 10 * DAY  # a one-day window ten days later
    assert [b.id for b in repo.window(["node-a"], day_10, day_10 + DAY)] == [long.id]
    assert [b.id for b in repo.window(None, day_10, day_10 + DAY)] == [long.id]
    assert repo.window(["node-b"], day_10, day_10 + DAY) == []
    # Edges: the last day of the booking, and the first instant after it.
    end = start + 20 * DAY
    assert [b.id for b in repo.window(None, end - HOUR, end)] == [long.id]
    assert repo.window(None, end, end + DAY) == []
    both = repo.window(None, start, start + HOUR)
    assert [b.id for b in both] == [long.id, short.id]  # by (start, id)


def test_window_sees_bookings_extended_past_the_longest_span(
    store: Store, service: BookingService
) -> None:
    booking = service.create(
        request(("node-a-gpu0",), FIXED_NOW, FIXED_NOW + HOUR), whole_hours=True
    )
    service.change_end(booking.id, FIXED_NOW + 15 * DAY)
    later = FIXED_NOW + 12 * DAY
    assert [b.id for b in BookingStore(store).window(None, later, later + DAY)] == [booking.id]


def test_window_returns_every_status(store: Store, service: BookingService) -> None:
    ids = [
        service.create(
            request((f"node-a-gpu{i}",), FIXED_NOW, FIXED_NOW + 3 * HOUR), whole_hours=True
        ).id
        for i in range(3)
    ]
    service.cancel(ids[1])
    clock = service.clock
    assert isinstance(clock, FakeClock)
    clock.advance(30 * 60)
    service.release(ids[2], whole_hours=True)  # 10:30: ends 11:00
    rows = BookingStore(store).window(None, FIXED_NOW, FIXED_NOW + DAY)
    assert [(b.id, b.status, b.end - b.start) for b in rows] == [
        (ids[0], BookingStatus.ACTIVE, 3 * HOUR),
        (ids[1], BookingStatus.CANCELLED, 3 * HOUR),
        (ids[2], BookingStatus.COMPLETED, HOUR),
    ]


# -------------------------------------------------------------------------------- durability


def test_write_is_visible_from_another_engine_right_after_return(
    sqlite_url: str, store: Store, service: BookingService
) -> None:
    other = Store(make_engine(sqlite_url))
    try:
        booking = service.create(
            request(("node-b-gpu2",), FIXED_NOW + HOUR, FIXED_NOW + 2 * HOUR, "node-b"),
            whole_hours=True,
        )
        assert BookingStore(other).get(booking.id) == booking
        service.cancel(booking.id)
        seen = BookingStore(other).get(booking.id)
        assert seen is not None and seen.status is BookingStatus.CANCELLED
        assert BookingStore(other).all_active_claims() == []
    finally:
        other.dispose()


def test_write_survives_reopening_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    first = Store(make_engine(url))
    upgrade(first)
    service = BookingService(first, FakeClock(FIXED_NOW), BookingLimits())
    service.replace_topology(demo_topology())
    booking = service.create(
        request(("node-a-gpu1",), FIXED_NOW, FIXED_NOW + HOUR), whole_hours=True
    )
    first.dispose()
    second = Store(make_engine(url))
    try:
        assert BookingStore(second).get(booking.id) == booking
    finally:
        second.dispose()


def test_a_stuck_writer_makes_others_fail_fast_not_hang(sqlite_url: str) -> None:
    """The writer gate honours the busy timeout: 503-style StoreUnavailable, no hang."""
    import threading

    from procplan.store.engine import Store, StoreUnavailable, make_engine

    holder = Store(make_engine(sqlite_url), busy_timeout_s=5)
    waiter_same_process = Store(make_engine(sqlite_url), busy_timeout_s=0.2)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.write():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(5)
        with pytest.raises(StoreUnavailable), waiter_same_process.write():
            pass
    finally:
        release.set()
        thread.join(10)
        holder.dispose()
        waiter_same_process.dispose()
