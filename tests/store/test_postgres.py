"""PostgreSQL: the same schema through Alembic, the booking API on it, the exclusion constraint
that backs the ledger's rule 1, and a multi-process race.

Needs ``PROCPLAN_TEST_PG_URL`` (skips locally without it; CI fails instead).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from race_workers import FIXED_NOW, HOUR, Round, run_race
from starlette.testclient import TestClient
from tests.conftest import admin_client

from procplan.config import Settings
from procplan.core.invariants import find_overlaps
from procplan.server import Composed, compose
from procplan.store.bookings_repo import BookingStore
from procplan.store.engine import Store, make_engine
from procplan.store.migrate import alembic_config, upgrade
from procplan.testing import FakeClock

# The demo topology plus the server's own host (named "workstation" by tests/conftest.py).
DEMO_NODES = ["node-a", "node-b", "workstation"]

pytestmark = pytest.mark.postgres

TABLES = {"nodes", "gpus", "users", "bookings", "claims", "meta", "alembic_version"}


@pytest.fixture
def pg_composed(pg_url: str) -> Iterator[Composed]:
    built = compose(
        Settings(db_url=pg_url, demo=True, local_node="workstation"), clock=FakeClock(FIXED_NOW)
    )
    yield built
    built.store.dispose()


@pytest.fixture
def pg_client(pg_composed: Composed) -> Iterator[TestClient]:
    with admin_client(pg_composed) as client:
        yield client


def test_migrations_create_the_schema(pg_url: str) -> None:
    store = Store(make_engine(pg_url))
    try:
        upgrade(store)
        upgrade(store)  # idempotent
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        inspector = sa.inspect(store.engine)
        assert set(inspector.get_table_names()) >= TABLES
        with store.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            assert versions.scalars().all() == [head]
            meta = dict(conn.execute(sa.text("SELECT key, value FROM meta")).all())
            assert meta == {"ledger_version": 0, "topology_version": 0, "jobs_version": 0}
            constraint = conn.execute(
                sa.text(
                    "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conname = 'claims_no_overlap'"
                )
            ).scalar_one()
            assert constraint.startswith("EXCLUDE USING gist")
            assert "WHERE ((active AND (booking_id IS NOT NULL)))" in constraint
            extension = conn.execute(
                sa.text("SELECT extname FROM pg_extension WHERE extname = 'btree_gist'")
            ).scalar()
            assert extension == "btree_gist"
    finally:
        store.dispose()


def test_bookings_on_postgres(pg_client: TestClient) -> None:
    client = pg_client
    nodes = client.get("/api/nodes").json()["nodes"]
    assert [n["id"] for n in nodes] == DEMO_NODES

    body = {
        "node_id": "node-a",
        "start": "2026-11-23T12:00:00Z",
        "end": "2026-11-23T14:00:00Z",
        "user_label": "PG",
        "gpu_ids": ["node-a-gpu0", "node-a-gpu1"],
    }
    first = client.post("/api/book", json=body)
    assert first.status_code == 201, first.text
    booking_id = first.json()["booking_id"]

    conflict = client.post("/api/book", json={**body, "gpu_ids": ["node-a-gpu1"]})
    assert conflict.status_code == 400
    assert conflict.json() == {
        "error": "GPU 'node-a-gpu1' is already booked for the requested window",
        "status": 400,
    }
    native = client.post(
        "/api/v1/bookings",
        json={
            "node_id": "node-a",
            "start": "2026-11-23T13:30Z",
            "duration_minutes": 30,
            "gpu_ids": ["node-a-gpu0"],
        },
        headers={"X-ProcPlan-User": "bob"},
    )
    assert native.status_code == 409 and native.json()["code"] == "gpu_conflict"

    picked = client.post("/api/book", json={**body, "gpu_ids": None, "gpu_count": 2})
    assert picked.status_code == 201, picked.text
    assert sorted(picked.json()["gpu_ids"]) == ["node-a-gpu2", "node-a-gpu3"]

    hours = client.get("/api/availability", params={"node_id": "node-a"}).json()["hours"]
    assert hours[12]["used_count"] == 4

    # Release (early) and cancel free the GPUs.
    done = client.post("/api/mark_done", json={"booking_id": booking_id})
    assert done.json() == {"booking_id": booking_id, "status": "completed"}
    assert client.post("/api/book", json=body).status_code == 201
    cancelled = client.delete(f"/api/bookings/{picked.json()['booking_id']}")
    assert cancelled.json()["status"] == "cancelled"
    assert client.delete(f"/api/bookings/{picked.json()['booking_id']}").status_code == 404
    again = client.post("/api/book", json={**body, "gpu_ids": ["node-a-gpu2", "node-a-gpu3"]})
    assert again.status_code == 201

    # Extend into another booking is refused; shorten works.
    ext = client.post(
        "/api/v1/bookings",
        json={
            "node_id": "node-b",
            "start": "2026-11-23T10:00Z",
            "end": "2026-11-23T11:00Z",
            "gpu_ids": ["node-b-gpu0"],
        },
        headers={"X-ProcPlan-User": "carol"},
    ).json()["booking"]
    client.post(
        "/api/v1/bookings",
        json={
            "node_id": "node-b",
            "start": "2026-11-23T12:00Z",
            "end": "2026-11-23T13:00Z",
            "gpu_ids": ["node-b-gpu0"],
        },
        headers={"X-ProcPlan-User": "dave"},
    )
    path = f"/api/v1/bookings/{ext['id']}"
    assert client.patch(path, json={"end": "2026-11-23T12:00Z"}).status_code == 200
    assert client.patch(path, json={"end": "2026-11-23T12:30Z"}).status_code == 409
    assert client.patch(path, json={"end": "2026-11-23T10:30Z"}).status_code == 200

    listed = client.get("/api/v1/bookings", params={"status": "active"}).json()
    assert listed["total"] == 4


def test_exclusion_constraint_guards_claims_directly(
    pg_client: TestClient, pg_composed: Composed
) -> None:
    made = pg_client.post(
        "/api/book",
        json={
            "node_id": "node-a",
            "start": "2026-11-23T12:00:00Z",
            "end": "2026-11-23T14:00:00Z",
            "user_label": "X",
            "gpu_ids": ["node-a-gpu0"],
        },
    )
    assert made.status_code == 201
    engine = pg_composed.store.engine
    with engine.begin() as conn:
        gpu_pk = conn.execute(sa.text("SELECT pk FROM gpus WHERE id = 'node-a-gpu0'")).scalar_one()
        # A second active booking row, copied column by column (whatever the schema adds).
        table = sa.Table("bookings", sa.MetaData(), autoload_with=conn)
        row = dict(
            conn.execute(sa.select(table).where(table.c.id == made.json()["booking_id"]))
            .mappings()
            .one()
        )
        row.pop("id")
        row.update(label="rogue", start_s=FIXED_NOW + 3 * HOUR, end_s=FIXED_NOW + 5 * HOUR)
        rogue = conn.execute(table.insert().values(**row).returning(table.c.id)).scalar_one()

    insert_claim = sa.text(
        "INSERT INTO claims (booking_id, gpu_pk, start_s, end_s, active, position) "
        "VALUES (:b, :g, :s, :e, :active, 0)"
    )
    overlapping = {"b": rogue, "g": gpu_pk, "s": FIXED_NOW + 3 * HOUR, "e": FIXED_NOW + 5 * HOUR}
    with pytest.raises(sa.exc.IntegrityError, match="claims_no_overlap"), engine.begin() as conn:
        conn.execute(insert_claim, {**overlapping, "active": True})
    # An inactive (cancelled / completed) overlapping claim is history, not a conflict.
    with engine.begin() as conn:
        conn.execute(insert_claim, {**overlapping, "active": False})
    # Adjacent active claims do not overlap (half-open ranges).
    with engine.begin() as conn:
        conn.execute(
            insert_claim,
            {**overlapping, "s": FIXED_NOW + 4 * HOUR, "e": FIXED_NOW + 5 * HOUR, "active": True},
        )
    # Re-activating the inactive overlapping claim is refused too.
    with pytest.raises(sa.exc.IntegrityError, match="claims_no_overlap"), engine.begin() as conn:
        conn.execute(sa.text("UPDATE claims SET active = true WHERE NOT active"))
    assert find_overlaps(BookingStore(pg_composed.store).all_active_claims()) == []


def test_processes_racing_on_postgres_never_double_book(pg_composed: Composed, pg_url: str) -> None:
    base = FIXED_NOW + 14 * HOUR
    rounds = [
        (Round("node-a", base, base + 2 * HOUR, gpu_ids=("node-a-gpu0", "node-a-gpu1")), 1),
        (Round("node-b", base + 3 * HOUR, base + 4 * HOUR, gpu_ids=("node-b-gpu4",)), 1),
        (Round("node-a", base + 5 * HOUR, base + 7 * HOUR, gpu_count=3), 1),
        (Round("node-b", base + 8 * HOUR, base + 9 * HOUR, gpu_count=4), 2),
        (Round("node-a", base + 10 * HOUR, base + 11 * HOUR, gpu_count=1), 4),
    ]
    per_round = run_race(pg_url, [spec for spec, _ in rounds], workers=4)
    for number, (_, winners) in enumerate(rounds):
        outcomes = per_round[number]
        won = [o for o in outcomes if o[1] == "ok"]
        assert len(won) == winners, (number, outcomes)
        assert {o[1] for o in outcomes if o[1] != "ok"} <= {"gpu_conflict", "no_free_gpus"}
        picked = [gpu for o in won for gpu in o[3]]
        assert len(picked) == len(set(picked))
    audit = BookingStore(pg_composed.store)
    assert find_overlaps(audit.all_active_claims()) == []
    assert len(audit.window(None, base, base + 12 * HOUR)) == sum(w for _, w in rounds)
