"""Idle reclaim end to end on a real SQLite store (ADR 0013): agent heartbeats carrying a
FakeGpuReader's readings, a FakeClock, the leader's cycle (its housekeeping runs the check):
flag → warning (an outbox note) → release (the booking truncated, the queue sees the GPUs at
once), "keep" stops it, and a server restart in the middle loses nothing."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient
from tests.conftest import FIXED_NOW, admin_client, demo_settings, signed_in

from procplan.core.timeutil import to_iso
from procplan.server import Composed, compose
from procplan.service.idle_reclaim import IdleReclaim
from procplan.store.tables import audit, outbox, users
from procplan.testing import FakeClock, FakeGpuReader

TOKEN = "idle-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE = {"X-ProcPlan-User": "alice"}
BOB = {"X-ProcPlan-User": "bob"}
NODE = "gpu-07"
INTERVAL = 300.0  # the longest an agent may ask for: down after 15 min without a heartbeat
STEP = 5 * 60
MIN = 60


COMPOSE_SETTINGS = {"agent_token": TOKEN, "idle_reclaim": True}  # the root ``composed``


def build(sqlite_url: str, clock: FakeClock) -> Composed:
    return compose(demo_settings(sqlite_url, **COMPOSE_SETTINGS), clock=clock)


class Agent:
    """Speaks the agent protocol for ``NODE`` from a FakeGpuReader."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.reader = FakeGpuReader(2, host=NODE)
        devices = [dataclasses.asdict(d) for d in self.reader.devices()]
        body = {"node_id": NODE, "hostname": "gpu-07.lab", "address": "10.0.0.7",
                "agent_version": "0.1.0", "interval_s": INTERVAL, "os_user": "root",
                "pid": 4343, "reader": "fake", "devices": devices}  # fmt: skip
        answer = client.post("/api/v1/agents/register", json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text
        self.session = answer.json()["session"]

    def heartbeat(self) -> None:
        rows = [
            {"gpu_uuid": p.gpu_uuid, "pid": p.pid, "used_memory_mb": p.used_memory_mb,
             "user": p.user, "command": p.command, "job_id": None, "ancestors": []}
            for p in self.reader.processes()
        ]  # fmt: skip
        body = {"session": self.session,
                "readings": [dataclasses.asdict(r) for r in self.reader.readings()],
                "processes": rows, "read_error": None, "jobs": []}  # fmt: skip
        answer = self.client.post(f"/api/v1/agents/{NODE}/heartbeat", json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text


def book(client: TestClient) -> int:
    body = {"node_id": NODE, "gpu_count": 2, "start": to_iso(FIXED_NOW),
            "duration_minutes": 8 * 60, "label": "train"}  # fmt: skip
    answer = client.post("/api/v1/bookings", json=body, headers=ALICE)
    assert answer.status_code == 201, answer.text
    subscribe(client)
    return int(answer.json()["booking"]["id"])


def subscribe(client: TestClient) -> None:
    """Alice subscribes to her bookings' events (the outbox keeps only notes someone
    receives)."""
    if client.get("/api/v1/notify/channels", headers=ALICE).json()["channels"]:
        return
    body = {"url": "json://localhost/", "events": "booking", "label": "mine"}
    answer = client.post("/api/v1/notify/channels", json=body, headers=ALICE)
    assert answer.status_code == 201, answer.text


def run_until(
    composed: Composed, agent: Agent, clock: FakeClock, minutes: int, client: TestClient
) -> None:
    """Heartbeat and run the leader's cycle every ``STEP`` until ``FIXED_NOW + minutes``."""
    while clock.now() < FIXED_NOW + minutes * MIN:
        clock.advance(min(STEP, FIXED_NOW + minutes * MIN - clock.now()))
        agent.client = client
        agent.heartbeat()
        composed.scheduler.run_once()


def idle_state(client: TestClient, booking_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/v1/bookings/{booking_id}/idle")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def notes(composed: Composed) -> list[tuple[str, str]]:
    query = sa.select(outbox.c.kind, users.c.name).join(users, users.c.pk == outbox.c.user_pk)
    with composed.store.read() as conn:
        return [(str(k), str(u)) for k, u in conn.execute(query.order_by(outbox.c.pk))]


def booking(client: TestClient, booking_id: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/bookings/{booking_id}").json()
    return body


def test_idle_booking_is_warned_then_released_and_the_queue_gets_the_gpus(
    composed: Composed, client: TestClient, clock: FakeClock
) -> None:
    agent = Agent(client)
    agent.heartbeat()
    booking_id = book(client)
    job = client.post(
        "/api/v1/jobs", headers=BOB,
        json={"command": ["python", "train.py"], "node_id": NODE, "gpu_count": 2},
    )  # fmt: skip
    assert job.status_code == 201, job.text
    job_id = job.json()["job_id"]
    composed.scheduler.run_once()
    assert idle_state(client, booking_id)["idle_since"] == to_iso(FIXED_NOW)

    run_until(composed, agent, clock, 25, client)
    assert notes(composed) == []
    run_until(composed, agent, clock, 30, client)
    state = idle_state(client, booking_id)
    assert state["warned_at"] == to_iso(FIXED_NOW + 30 * MIN)
    assert state["release_at"] == to_iso(FIXED_NOW + 45 * MIN)
    assert notes(composed) == [("booking.idle", "alice")]
    assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "pending"
    board = client.get(f"/api/v1/nodes/{NODE}").json()["gpus"]
    assert all("idle_warned" in gpu["flags"] for gpu in board)  # the board's badge

    run_until(composed, agent, clock, 45, client)
    released = booking(client, booking_id)
    assert (released["status"], released["end"]) == ("completed", to_iso(FIXED_NOW + 45 * MIN))
    assert not any(
        "idle_warned" in g["flags"] for g in client.get(f"/api/v1/nodes/{NODE}").json()["gpus"]
    )
    reason = idle_state(client, booking_id)["released_reason"]
    assert idle_state(client, booking_id)["release_at"] is None
    assert reason == "idle: no process of its owner and <= 5 % utilization for 45 min"
    assert notes(composed) == [("booking.idle", "alice"), ("booking.released", "alice")]
    with composed.store.read() as conn:
        entry = conn.execute(
            sa.select(audit.c.actor, audit.c.action, audit.c.owner, audit.c.detail).where(
                audit.c.target == f"booking {booking_id}", audit.c.action == "booking.release"
            )
        ).one()
    assert tuple(entry) == ("procplan", "booking.release", "alice", reason)
    # The release ran in the cycle's housekeeping: the same cycle started Bob's job.
    assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "running"


def test_owner_process_or_utilization_keeps_the_booking(
    composed: Composed, client: TestClient, clock: FakeClock
) -> None:
    agent = Agent(client)
    agent.heartbeat()
    booking_id = book(client)
    agent.reader.add_process(1, 999, used_memory_mb=100, user="alice", command="python")
    run_until(composed, agent, clock, 60, client)
    assert idle_state(client, booking_id)["idle_since"] is None
    agent.reader.clear_processes()
    agent.reader.set_reading(0, utilization_pct=60.0)
    run_until(composed, agent, clock, 120, client)
    assert idle_state(client, booking_id)["idle_since"] is None
    assert booking(client, booking_id)["status"] == "active"
    assert notes(composed) == []


def test_memory_held_at_zero_utilization_waits_longer(
    composed: Composed, client: TestClient, clock: FakeClock
) -> None:
    agent = Agent(client)
    agent.heartbeat()
    agent.reader.set_reading(0, memory_used_mb=30_000)
    agent.heartbeat()
    booking_id = book(client)
    composed.scheduler.run_once()
    run_until(composed, agent, clock, 60, client)
    assert idle_state(client, booking_id)["warned_at"] is None
    run_until(composed, agent, clock, 120, client)
    assert idle_state(client, booking_id)["warned_at"] == to_iso(FIXED_NOW + 120 * MIN)


def test_keep_stops_the_release(composed: Composed, client: TestClient, clock: FakeClock) -> None:
    agent = Agent(client)
    agent.heartbeat()
    booking_id = book(client)
    composed.scheduler.run_once()
    run_until(composed, agent, clock, 30, client)
    assert idle_state(client, booking_id)["warned_at"] is not None
    with signed_in(composed, "alice") as alice:
        kept = alice.post(f"/api/v1/bookings/{booking_id}/keep")
    assert kept.status_code == 200, kept.text
    assert kept.json()["idle"]["keep"] is True
    assert kept.json()["booking"]["id"] == booking_id
    run_until(composed, agent, clock, 6 * 60, client)
    assert booking(client, booking_id)["status"] == "active"
    assert idle_state(client, booking_id)["keep"] is True
    assert notes(composed) == [("booking.idle", "alice")]


def test_a_restart_in_the_middle_keeps_the_state_and_the_schedule(
    sqlite_url: str, clock: FakeClock
) -> None:
    first = build(sqlite_url, clock)
    with admin_client(first) as client:
        agent = Agent(client)
        agent.heartbeat()
        booking_id = book(client)
        first.scheduler.run_once()
        run_until(first, agent, clock, 35, client)
        assert idle_state(client, booking_id)["warned_at"] == to_iso(FIXED_NOW + 30 * MIN)
    first.store.dispose()

    second = build(sqlite_url, clock)
    try:
        with admin_client(second) as client:
            run_until(second, agent, clock, 40, client)
            state = idle_state(client, booking_id)
            assert (state["idle_since"], state["warned_at"]) == (
                to_iso(FIXED_NOW),
                to_iso(FIXED_NOW + 30 * MIN),
            )
            assert booking(client, booking_id)["status"] == "active"
            run_until(second, agent, clock, 45, client)
            assert booking(client, booking_id)["status"] == "completed"
            assert booking(client, booking_id)["end"] == to_iso(FIXED_NOW + 45 * MIN)
        assert notes(second) == [("booking.idle", "alice"), ("booking.released", "alice")]
    finally:
        second.store.dispose()


def test_off_by_default_and_per_tenant(sqlite_url: str, clock: FakeClock) -> None:
    built = compose(demo_settings(sqlite_url, agent_token=TOKEN), clock=clock)
    try:
        with admin_client(built) as client:
            agent = Agent(client)
            agent.heartbeat()
            booking_id = book(client)
            run_until(built, agent, clock, 60, client)
            assert idle_state(client, booking_id)["idle_since"] is None
            tenant = client.post("/api/v1/tenants", json={"name": "lab"})
            assert tenant.status_code == 201, tenant.text
            member = client.put("/api/v1/tenants/lab/members/alice")
            assert member.status_code in (200, 204), member.text
            on = client.put("/api/v1/tenants/lab/idle-reclaim", json={"enabled": True})
            assert on.status_code == 200, on.text
            idle(built).check()  # now, not throttled: the pass at +60 min just ran
            run_until(built, agent, clock, 90, client)
            assert idle_state(client, booking_id)["warned_at"] == to_iso(FIXED_NOW + 90 * MIN)
            off = client.put("/api/v1/tenants/lab/idle-reclaim", json={"enabled": False})
            assert off.json() == {"tenant_id": "lab", "idle_reclaim": False}
            run_until(built, agent, clock, 200, client)
            assert idle_state(client, booking_id)["warned_at"] is None
            assert booking(client, booking_id)["status"] == "active"
    finally:
        built.store.dispose()


def test_keep_refusals(composed: Composed, client: TestClient) -> None:
    Agent(client).heartbeat()
    booking_id = book(client)
    with signed_in(composed, "bob") as bob:
        assert bob.post(f"/api/v1/bookings/{booking_id}/keep").status_code == 403
        assert bob.put("/api/v1/tenants/x/idle-reclaim", json={"enabled": True}).status_code == 403
    assert client.post("/api/v1/bookings/999/keep").status_code == 404
    assert client.get("/api/v1/bookings/999/idle").status_code == 404
    assert client.post("/api/v1/bookings/abc/keep").status_code == 400
    bad = client.put("/api/v1/tenants/nope/idle-reclaim", json={"enabled": "yes"})
    assert bad.status_code == 400
    assert (
        client.put("/api/v1/tenants/nope/idle-reclaim", json={"enabled": True}).status_code == 404
    )
    assert client.post(f"/api/v1/bookings/{booking_id}/release", headers=ALICE).status_code == 200
    gone = client.post(f"/api/v1/bookings/{booking_id}/keep")
    assert gone.status_code == 409, gone.text
    assert isinstance(idle(composed), IdleReclaim)


def idle(composed: Composed) -> IdleReclaim:
    found: IdleReclaim = composed.scheduler.housekeeping.idle  # type: ignore[attr-defined]
    return found
