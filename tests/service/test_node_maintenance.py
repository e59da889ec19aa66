"""Node maintenance end to end in-process (issue #16 item 5, ADR 0020): drain, resume, remove.

The demo cluster (node-a 4×A100, node-b, workstation) on a real SQLite store with a FakeClock;
jobs start only when a test runs a cycle. A drain stops new starts and new bookings on the node
while running work and existing bookings stay, their owners get an outbox note in the drain's
transaction; resume lets the waiting job start; remove retires the node with its history and
keeps it out of the cluster, whatever the config or an agent says, until resume.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient
from tests.conftest import FIXED_NOW

from procplan.core.timeutil import HOUR, to_iso
from procplan.server import Composed
from procplan.store.tables import audit, outbox, users
from procplan.testing import FakeClock, FakeGpuReader

ALICE = {"X-ProcPlan-User": "alice"}
BOB = {"X-ProcPlan-User": "bob"}
TOKEN = "maintenance-token"
AGENT = {"Authorization": f"Bearer {TOKEN}"}
COMPOSE_SETTINGS = {"agent_token": TOKEN}  # the root conftest's ``composed``


def submit(client: TestClient, node: str, gpus: int = 1, who: dict[str, str] = ALICE) -> int:
    body = {"command": ["python", "train.py"], "gpu_count": gpus, "node_id": node,
            "time_limit_s": 3600}  # fmt: skip
    answer = client.post("/api/v1/jobs", json=body, headers=who)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["job"]["id"])


def job(client: TestClient, job_id: int) -> dict[str, Any]:
    answer = client.get(f"/api/v1/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def book(client: TestClient, node: str, start: int, who: dict[str, str] = ALICE) -> Any:
    body = {"node_id": node, "gpu_count": 1, "start": to_iso(start), "duration_minutes": 120,
            "label": "exp"}  # fmt: skip
    return client.post("/api/v1/bookings", json=body, headers=who)


def drain(client: TestClient, node: str, reason: str | None = "disk swap") -> dict[str, Any]:
    answer = client.post(f"/api/v1/nodes/{node}/drain", json={"reason": reason})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def post(client: TestClient, node: str, action: str) -> Any:
    return client.post(f"/api/v1/nodes/{node}/{action}", json={})


def node(client: TestClient, node_id: str) -> dict[str, Any]:
    answer = client.get("/api/v1/nodes")
    found = [n for n in answer.json()["nodes"] if n["id"] == node_id]
    assert len(found) == 1, [n["id"] for n in answer.json()["nodes"]]
    return found[0]


def subscribe(client: TestClient, who: dict[str, str]) -> None:
    """The outbox keeps only notes someone receives: the user listens to booking events."""
    body = {"url": "json://localhost/", "events": "booking", "label": "mine"}
    answer = client.post("/api/v1/notify/channels", json=body, headers=who)
    assert answer.status_code == 201, answer.text


def notes(composed: Composed) -> list[tuple[str, str, str]]:
    query = sa.select(outbox.c.kind, users.c.name, outbox.c.body).join(
        users, users.c.pk == outbox.c.user_pk
    )
    with composed.store.read() as conn:
        return [(str(k), str(u), str(b)) for k, u, b in conn.execute(query.order_by(outbox.c.pk))]


def test_a_drained_node_starts_nothing_new_and_resume_starts_the_waiting_job(
    composed: Composed, client: TestClient
) -> None:
    running = submit(client, "node-a")
    composed.scheduler.run_once()
    assert job(client, running)["state"] == "running"
    assert node(client, "node-a")["sched_state"] == "mixed"

    drained = drain(client, "node-a")
    assert (drained["drained"], drained["reason"]) == (True, "disk swap")
    waiting = submit(client, "node-a")
    composed.scheduler.run_once()
    assert job(client, running)["state"] == "running"  # running work finishes
    pending = job(client, waiting)
    assert (pending["state"], pending["reason"]) == ("pending", "NodeDown")
    view = node(client, "node-a")
    assert (view["sched_state"], view["reason"], view["state"]) == (
        "draining", "disk swap", "unmanaged",
    )  # fmt: skip
    assert view["drained_by"] and view["drained_at"] == to_iso(FIXED_NOW)
    assert node(client, "node-b")["sched_state"] == "idle"

    ended = client.delete(f"/api/v1/jobs/{running}")
    assert ended.status_code == 200, ended.text
    composed.scheduler.run_once()
    assert job(client, running)["state"] == "cancelled", job(client, running)
    assert node(client, "node-a")["sched_state"] == "drained"  # empty now
    assert job(client, waiting)["state"] == "pending"

    resumed = post(client, "node-a", "resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["drained"] is False
    composed.scheduler.run_once()
    assert job(client, waiting)["state"] == "running"
    assert node(client, "node-a")["reason"] is None


def test_no_new_booking_on_a_drained_node_but_existing_ones_stay_and_owners_hear(
    composed: Composed, client: TestClient, clock: FakeClock
) -> None:
    soon = book(client, "node-a", FIXED_NOW + HOUR)
    later = book(client, "node-a", FIXED_NOW + 5 * HOUR, who=BOB)
    assert {soon.status_code, later.status_code} == {201}, (soon.text, later.text)
    subscribe(client, ALICE)
    subscribe(client, BOB)

    answer = drain(client, "node-a", "PSU replacement")
    ids = [soon.json()["booking"]["id"], later.json()["booking"]["id"]]
    assert answer["notified_bookings"] == ids
    told = [(kind, user) for kind, user, _ in notes(composed) if kind == "booking.draining"]
    assert told == [("booking.draining", "alice"), ("booking.draining", "bob")]
    assert "PSU replacement" in notes(composed)[-1][2]

    refused = book(client, "node-a", FIXED_NOW + 10 * HOUR)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "node_draining"
    assert "PSU replacement" in refused.json()["error"]
    check = client.post(
        "/api/v1/bookings/check",
        json={"node_id": "node-a", "gpu_count": 1, "start": to_iso(FIXED_NOW + 10 * HOUR),
              "duration_minutes": 60},
        headers=ALICE,
    )  # fmt: skip
    assert (check.status_code, check.json()["code"]) == (409, "node_draining")
    assert book(client, "node-b", FIXED_NOW + HOUR).status_code == 201  # other nodes book
    for booking_id in ids:  # existing bookings stay
        assert client.get(f"/api/v1/bookings/{booking_id}").json()["status"] == "active"

    drain(client, "node-a", "PSU and fans")  # again: reason replaced, nobody told twice
    assert len([n for n in notes(composed) if n[0] == "booking.draining"]) == 2
    assert node(client, "node-a")["reason"] == "PSU and fans"

    composed.audit.flush()
    with composed.store.read() as conn:
        actions = [row[0] for row in conn.execute(sa.select(audit.c.action))]
    assert actions.count("node.drain") == 2


def test_the_compat_book_route_refuses_a_drained_node_with_400(client: TestClient) -> None:
    drain(client, "node-a")
    body = {"node_id": "node-a", "gpu_ids": ["node-a-gpu0"], "user_label": "alice",
            "start": to_iso(FIXED_NOW + HOUR), "end": to_iso(FIXED_NOW + 2 * HOUR)}  # fmt: skip
    answer = client.post("/api/book", json=body)
    assert answer.status_code == 400, answer.text
    assert "drained" in answer.json()["error"]


def test_remove_needs_an_empty_node_keeps_history_and_survives_a_config_sync(
    composed: Composed, client: TestClient
) -> None:
    booked = book(client, "node-a", FIXED_NOW + HOUR)
    busy = post(client, "node-a", "remove")
    assert (busy.status_code, busy.json()["code"]) == (409, "node_in_use")
    booking_id = booked.json()["booking"]["id"]
    assert client.post(f"/api/v1/bookings/{booking_id}/cancel", json={}).status_code == 200

    removed = post(client, "node-a", "remove")
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed"] is True
    assert "node-a" not in [n["id"] for n in client.get("/api/v1/nodes").json()["nodes"]]
    assert client.get("/api/v1/nodes/node-a").status_code == 404
    assert client.get(f"/api/v1/bookings/{booking_id}").status_code == 200  # history kept
    assert book(client, "node-a", FIXED_NOW + HOUR).status_code in (400, 404)
    assert post(client, "node-a", "drain").json()["code"] == "node_removed"

    topology = composed.bookings.topology()
    composed.bookings.replace_topology(topology)  # a config reload that names node-a again
    assert composed.bookings.topology().node("node-a") is None

    assert post(client, "node-a", "resume").status_code == 200
    assert composed.bookings.topology().node("node-a") is not None
    assert node(client, "node-a")["sched_state"] == "idle"


def register(client: TestClient, node_id: str) -> Any:
    devices = [dataclasses.asdict(d) for d in FakeGpuReader(2, host=node_id).devices()]
    body = {"node_id": node_id, "hostname": f"{node_id}.lab", "address": "10.0.0.9",
            "agent_version": "0.1.0", "interval_s": 2.0, "os_user": "root", "pid": 4242,
            "reader": "fake", "devices": devices}  # fmt: skip
    return client.post("/api/v1/agents/register", json=body, headers=AGENT)


def test_an_agent_of_a_removed_node_is_refused_until_resume(client: TestClient) -> None:
    first = register(client, "gpu-09")
    assert first.status_code == 200, first.text
    assert node(client, "gpu-09")["sched_state"] == "idle"
    drain(client, "gpu-09", "retiring")
    assert node(client, "gpu-09")["sched_state"] == "drained"
    assert post(client, "gpu-09", "remove").status_code == 200

    session = first.json()["session"]
    beat = {"session": session, "readings": [], "processes": [], "read_error": None, "jobs": []}
    stale = client.post("/api/v1/agents/gpu-09/heartbeat", json=beat, headers=AGENT)
    assert (stale.status_code, stale.json()["code"]) == (409, "unknown_session")
    again = register(client, "gpu-09")
    assert (again.status_code, again.json()["code"]) == (409, "node_removed")
    assert "procplan node resume gpu-09" in again.json()["error"]

    assert post(client, "gpu-09", "resume").status_code == 200
    assert register(client, "gpu-09").status_code == 200
    view = node(client, "gpu-09")
    assert (view["sched_state"], view["state"], view["reason"]) == ("idle", "online", None)
