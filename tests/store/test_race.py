"""Several OS processes on one SQLite file never double-book (DESIGN.md, "Storage").

``BEGIN IMMEDIATE`` takes the write lock before the ledger check, so of N processes asking for
the same GPUs at the same instant exactly one wins; with ``gpu_count`` the pick happens in the
same transaction, so concurrent picks never collide either.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from race_workers import FIXED_NOW, HOUR, Round, run_race

from procplan.core.bookings import BookingLimits
from procplan.core.invariants import find_overlaps
from procplan.core.model import BookingStatus
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.store.bookings_repo import BookingStore
from procplan.store.engine import Store, make_engine
from procplan.store.migrate import upgrade
from procplan.testing import FakeClock, ServerProcess

DAY = 24 * HOUR
CONFLICT_CODES = {"gpu_conflict", "no_free_gpus"}


def race_rounds() -> list[tuple[Round, int]]:
    """Rounds (each on its own window) and how many workers must win each."""
    base = FIXED_NOW + 14 * HOUR  # 2026-11-24 00:00
    return [
        (Round("node-a", base, base + 2 * HOUR, gpu_ids=("node-a-gpu0", "node-a-gpu1")), 1),
        (Round("node-a", base + 2 * HOUR, base + 5 * HOUR, gpu_ids=("node-a-gpu3",)), 1),
        (Round("node-b", base + DAY, base + DAY + HOUR, gpu_ids=("node-b-gpu7", "node-b-gpu3")), 1),
        # Overlapping the first round's window on the other GPUs of node-a: 2 left, 3 asked.
        (Round("node-a", base + HOUR, base + 3 * HOUR, gpu_count=3), 0),
        (Round("node-a", base + 6 * HOUR, base + 8 * HOUR, gpu_count=3), 1),
        (Round("node-b", base + 2 * DAY, base + 2 * DAY + 4 * HOUR, gpu_count=4), 2),
        (Round("node-a", base + 3 * DAY, base + 3 * DAY + HOUR, gpu_count=1), 4),
    ]


def prepared_store(url: str) -> Store:
    """Migrate the file and sync the demo topology, as a server would on start."""
    store = Store(make_engine(url))
    upgrade(store)
    BookingService(store, FakeClock(FIXED_NOW), BookingLimits()).replace_topology(demo_topology())
    return store


def test_processes_racing_on_one_sqlite_file_never_double_book(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    store = prepared_store(url)
    try:
        specs = race_rounds()
        per_round = run_race(url, [spec for spec, _ in specs], workers=4)
        assert sorted(per_round) == list(range(len(specs)))
        for number, (spec, winners) in enumerate(specs):
            outcomes = per_round[number]
            assert len(outcomes) == 4
            won = [o for o in outcomes if o[1] == "ok"]
            lost = [o for o in outcomes if o[1] != "ok"]
            assert len(won) == winners, (number, outcomes)
            assert {o[1] for o in lost} <= CONFLICT_CODES, (number, outcomes)
            picked = [gpu for o in won for gpu in o[3]]
            assert len(picked) == len(set(picked)), (number, outcomes)
            if spec.gpu_ids:
                assert all(o[3] == spec.gpu_ids for o in won)
            if spec.gpu_count:
                assert all(len(o[3]) == spec.gpu_count for o in won)

        audit = BookingStore(store)
        claims = audit.all_active_claims()
        assert find_overlaps(claims) == []
        expected = sum(w for _, w in specs)
        bookings = audit.window(None, FIXED_NOW, FIXED_NOW + 10 * DAY)
        assert len(bookings) == expected
        assert all(b.status is BookingStatus.ACTIVE for b in bookings)
        assert len(claims) == sum(len(b.gpu_ids) for b in bookings)
    finally:
        store.dispose()


# ----------------------------------------------------------------------------- real servers


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    db = tmp_path / "shared.db"
    url = f"sqlite:///{db}"
    prepared_store(url).dispose()  # migrated and synced once; the servers re-sync the same
    args = ["--db-url", url, "--demo", "--host", "127.0.0.1"]
    with ThreadPoolExecutor(2) as pool:
        started = list(pool.map(lambda _: ServerProcess(args).start(), range(2)))
    try:
        yield [server.url for server in started], url
    finally:
        for server in started:
            server.stop()


def test_two_server_processes_on_one_file_never_double_book(
    two_servers: tuple[list[str], str],
) -> None:
    urls, db_url = two_servers
    now = int(time.time())
    base = now - now % DAY + 2 * DAY  # the day after tomorrow, 00:00 UTC

    def iso(instant: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(instant))

    threads_per_server = 3
    attempts = threads_per_server * len(urls)
    rounds = [
        {
            "node_id": "node-a",
            "gpu_ids": ["node-a-gpu0", "node-a-gpu2"],
            "start": iso(base + 9 * HOUR),
            "end": iso(base + 11 * HOUR),
        },
        {
            "node_id": "node-b",
            "gpu_ids": ["node-b-gpu5"],
            "start": iso(base + 10 * HOUR),
            "end": iso(base + 12 * HOUR),
        },
        {
            "node_id": "node-a",
            "gpu_count": 3,
            "start": iso(base + 14 * HOUR),
            "end": iso(base + 15 * HOUR),
        },
        {
            "node_id": "node-b",
            "gpu_ids": ["node-b-gpu0", "node-b-gpu1"],
            "start": iso(base + DAY),
            "end": iso(base + DAY + 6 * HOUR),
        },
    ]
    barrier = threading.Barrier(attempts)
    clients = [httpx.Client(base_url=u, timeout=30.0) for u in urls]
    try:
        for c in clients:  # open the connections before the race
            assert c.get("/api/nodes").status_code == 200

        def attempt(k: int, body: dict[str, object]) -> tuple[int, dict[str, object]]:
            client = clients[k % len(clients)]
            barrier.wait(timeout=30)
            response = client.post("/api/book", json={**body, "user_label": f"T{k}"})
            return response.status_code, response.json()

        with ThreadPoolExecutor(attempts) as pool:
            for body in rounds:
                results = list(pool.map(lambda k, b=body: attempt(k, b), range(attempts)))
                statuses = sorted(status for status, _ in results)
                assert statuses == [201] + [400] * (attempts - 1), results
                for status, payload in results:
                    if status == 400:
                        assert payload["status"] == 400
                        assert "already booked" in str(payload["error"]) or payload["error"] == (
                            "Not enough GPUs available for the requested window"
                        ), payload

        # Both servers see every booking (no stale view in either process).
        window = {"start": iso(base), "end": iso(base + 2 * DAY), "granularity": "day"}
        views = [
            c.post(
                "/api/availability_bulk", json={"node_ids": ["node-a", "node-b"], **window}
            ).json()
            for c in clients
        ]
        assert views[0] == views[1]
    finally:
        for c in clients:
            c.close()

    store = Store(make_engine(db_url))
    try:
        audit = BookingStore(store)
        assert find_overlaps(audit.all_active_claims()) == []
        assert len(audit.window(None, base, base + 3 * DAY)) == len(rounds)
    finally:
        store.dispose()
