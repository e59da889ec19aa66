"""Someone else's process on your booked GPU (issue #14): the booking's owner gets a note,
once per process, from the heartbeat that shows it; the owner's own process, or a process on
a GPU nobody booked, tells nobody."""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.testclient import TestClient

from procplan.core.timeutil import to_iso
from procplan.server import Composed
from procplan.store.channels_repo import ChannelStore
from procplan.testing import FakeClock, wait_until

TOKEN = "intrusion-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COMPOSE_SETTINGS = {"agent_token": TOKEN, "notify_poll_s": 0.05}  # the root ``composed``
NODE = "lab-box"


def register(client: TestClient) -> str:
    devices = [{"index": i, "uuid": f"GPU-{i}", "name": "NVIDIA A100", "memory_mb": 81920}
               for i in range(2)]  # fmt: skip
    body = {"node_id": NODE, "hostname": "lab-box.example", "address": "10.0.0.9",
            "agent_version": "0.1.0", "interval_s": 30.0, "os_user": "root", "pid": 4242,
            "reader": "fake", "devices": devices}  # fmt: skip
    reply = client.post("/api/v1/agents/register", json=body, headers=AUTH)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["session"])


def heartbeat(client: TestClient, session: str, *processes: dict[str, Any]) -> None:
    readings = [{"index": i, "uuid": f"GPU-{i}", "utilization_pct": 50.0, "memory_used_mb": 900,
                 "memory_total_mb": 81920, "temperature_c": 50.0, "power_w": 100.0, "mig": False}
                for i in range(2)]  # fmt: skip
    body = {"session": session, "readings": readings, "processes": list(processes),
            "jobs": [], "read_error": None}  # fmt: skip
    reply = client.post(f"/api/v1/agents/{NODE}/heartbeat", json=body, headers=AUTH)
    assert reply.status_code == 200, reply.text


def process(gpu: int, pid: int, user: str) -> dict[str, Any]:
    return {"gpu_uuid": f"GPU-{gpu}", "pid": pid, "used_memory_mb": 800, "user": user,
            "command": "python x.py", "job_id": None, "ancestors": [1]}  # fmt: skip


def notes(composed: Composed) -> list[str]:
    with composed.store.read() as conn:
        return [r[0] for r in conn.exec_driver_sql("SELECT subject FROM outbox ORDER BY pk")]


def test_the_booking_owner_hears_of_someone_elses_process(
    composed: Composed, client: TestClient, clock: FakeClock
) -> None:
    session = register(client)
    now = clock.now() - clock.now() % 60
    booking = {"node_id": NODE, "gpu_ids": [f"{NODE}-gpu0"], "user": "bob", "label": "eval",
               "start": to_iso(now), "end": to_iso(now + 3 * 3600)}  # fmt: skip
    made = client.post("/api/v1/bookings", json=booking, headers={"X-ProcPlan-User": "bob"})
    assert made.status_code == 201, made.text
    ChannelStore(composed.store).add("bob", "json://127.0.0.1:9/bob", "booking", "", now)

    heartbeat(client, session, process(0, 777, "bob"))  # bob's own: fine
    heartbeat(client, session, process(1, 888, "mallory"))  # on a GPU nobody booked
    assert notes_after_a_check(composed) == []
    heartbeat(client, session, process(0, 999, "mallory"))
    expected = [f"mallory runs a process on your booked GPU {NODE}-gpu0"]
    wait_until(lambda: notes(composed) == expected, 10, step=0.02)
    heartbeat(client, session, process(0, 999, "mallory"))  # still there: told once
    assert notes_after_a_check(composed) == expected


def notes_after_a_check(composed: Composed) -> list[str]:
    """The notes once a check has run (the watch checks a moment after a change)."""
    with contextlib.suppress(AssertionError):
        wait_until(lambda: False, 0.2, step=0.05)  # longer than its delay: it has run
    return notes(composed)
