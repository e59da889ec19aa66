"""Agent routes and the node views they feed (ADR 0006), in-process with a fixed clock.

An "agent" here is the test itself speaking the wire protocol, so every message, status and
field is checked exactly; the real agent process is exercised end to end in
``tests/e2e/test_agent_e2e.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from tests.conftest import admin_client, demo_settings

from procplan.server import Composed, compose
from procplan.testing import FakeClock

TOKEN = "s3cret-token"
COMPOSE_SETTINGS = {"agent_token": TOKEN}  # the root conftest's ``composed``
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE = {"X-ProcPlan-User": "alice"}
NODE = "gpu-01"


def device(index: int) -> dict[str, Any]:
    return {
        "index": index,
        "uuid": f"GPU-{index:04d}",
        "name": "NVIDIA H100 80GB HBM3",
        "memory_mb": 81559,
    }


def registration(**overrides: Any) -> dict[str, Any]:
    body = {
        "node_id": NODE,
        "hostname": "gpu-01.lab",
        "address": "10.0.0.5",
        "agent_version": "0.1.0",
        "interval_s": 2.0,
        "os_user": "root",
        "pid": 4242,
        "reader": "fake",
        "devices": [device(0), device(1)],
    }
    body.update(overrides)
    return body


def register(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/v1/agents/register", json=registration(**overrides), headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def reading(index: int, util: float = 50.0, used: int = 1000) -> dict[str, Any]:
    return {
        "index": index,
        "uuid": f"GPU-{index:04d}",
        "utilization_pct": util,
        "memory_used_mb": used,
        "memory_total_mb": 81559,
        "temperature_c": 40.0,
        "power_w": 100.0,
        "mig": False,
    }


def heartbeat(
    client: TestClient, session: str, processes: list[dict[str, Any]] | None = None, **kw: Any
) -> Any:
    body = {
        "session": session,
        "readings": kw.pop("readings", [reading(0), reading(1, util=0.0, used=0)]),
        "processes": processes or [],
        "jobs": kw.pop("jobs", []),
        "read_error": None,
    }
    return client.post(f"/api/v1/agents/{NODE}/heartbeat", json=body, headers=AUTH)


def node_view(client: TestClient, node_id: str = NODE) -> dict[str, Any]:
    response = client.get(f"/api/v1/nodes/{node_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def submit_batch(client: TestClient, **fields: Any) -> int:
    body = {"command": ["python", "train.py"], "node_id": NODE, "gpu_count": 1, **fields}
    response = client.post("/api/v1/jobs", json=body, headers=ALICE)
    assert response.status_code == 201, response.text
    return int(response.json()["job_id"])


def poll(client: TestClient, session: str, version: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"session": session, "wait": 0}
    if version is not None:
        params["version"] = version
    response = client.get(f"/api/v1/agents/{NODE}/jobs", params=params, headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def events(client: TestClient, session: str, *items: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(
        f"/api/v1/agents/{NODE}/events",
        json={"session": session, "events": list(items)},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


# ---- authentication and registration -------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
def test_agents_without_the_token_get_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/api/v1/agents/register", json=registration(), headers=headers)
    assert response.status_code == 401
    assert response.json() == {
        "error": "agent token missing or wrong: start the agent with --token <the server's "
        "--agent-token>",
        "status": 401,
        "code": "unauthorized",
    }
    for path in (f"/api/v1/agents/{NODE}/heartbeat", f"/api/v1/agents/{NODE}/events"):
        assert client.post(path, json={}, headers=headers).status_code == 401
    assert client.get(f"/api/v1/agents/{NODE}/jobs", headers=headers).status_code == 401


def test_register_adds_the_node_with_its_gpus(client: TestClient) -> None:
    body = register(client)
    assert body["node_id"] == NODE
    assert len(body["session"]) == 32
    assert (body["interval_s"], body["down_after_s"]) == (2.0, 6.0)
    assert body["gpus"] == [
        {"id": "gpu-01-gpu0", "index": 0, "uuid": "GPU-0000"},
        {"id": "gpu-01-gpu1", "index": 1, "uuid": "GPU-0001"},
    ]
    view = node_view(client)
    assert view["state"] == "online"
    assert (view["hostname"], view["address"]) == ("gpu-01.lab", "10.0.0.5")
    assert view["agent"] == {
        "version": "0.1.0",
        "reader": "fake",
        "os_user": "root",
        "interval_s": 2.0,
    }
    assert [g["model"] for g in view["gpus"]] == ["NVIDIA H100 80GB HBM3"] * 2
    config_node = node_view(client, "node-a")
    assert config_node["state"] == "unmanaged"
    assert config_node["gpus"][0]["utilization_pct"] is None


def test_a_second_live_agent_for_the_node_is_refused(client: TestClient) -> None:
    register(client)
    response = client.post(
        "/api/v1/agents/register", json=registration(pid=999, hostname="other"), headers=AUTH
    )
    assert response.status_code == 409
    assert response.json()["code"] == "node_taken"
    assert "already served by the agent on gpu-01.lab (pid 4242)" in response.json()["error"]
    register(client)  # the same agent registering again is fine


def test_bad_registration_names_the_field(client: TestClient) -> None:
    for overrides, words in [
        ({"node_id": ""}, "node_id must not be empty"),
        ({"interval_s": 0}, "interval_s must be a number between"),
        ({"devices": "x"}, "devices: Input should be a valid list"),
        ({"devices": [device(0), device(0)]}, "two devices have the same index"),
        ({"devices": [{"index": "a"}]}, "devices.0: index must be an integer"),
    ]:
        response = client.post(
            "/api/v1/agents/register", json=registration(**overrides), headers=AUTH
        )
        assert response.status_code == 400, overrides
        assert words in response.json()["error"]


# ---- heartbeats, processes, flags --------------------------------------------------------


def test_heartbeat_readings_show_in_the_node_view(client: TestClient) -> None:
    session = register(client)["session"]
    assert heartbeat(client, session).json() == {"ok": True}
    gpu = node_view(client)["gpus"][0]
    assert gpu["utilization_pct"] == 50.0
    assert (gpu["memory_used_mb"], gpu["memory_total_mb"]) == (1000, 81559)
    assert (gpu["temperature_c"], gpu["power_w"]) == (40.0, 100.0)
    assert gpu["foreign"] is False and gpu["flags"] == [] and gpu["processes"] == []


def test_heartbeat_with_an_unknown_session_asks_to_register(client: TestClient) -> None:
    register(client)
    response = heartbeat(client, "0" * 32)
    assert response.status_code == 409
    assert response.json()["code"] == "unknown_session"


def test_an_unbooked_process_is_foreign_and_flagged(client: TestClient, composed: Composed) -> None:
    session = register(client)["session"]
    process = {"gpu_uuid": "GPU-0000", "pid": 77, "used_memory_mb": 900, "user": "bob",
               "command": "python hog.py", "job_id": None, "ancestors": [1]}  # fmt: skip
    heartbeat(client, session, [process])
    gpu = node_view(client)["gpus"][0]
    assert gpu["foreign"] is True
    assert gpu["flags"] == ["unbooked_use"]
    assert gpu["processes"] == [
        {"pid": 77, "user": "bob", "command": "python hog.py", "used_memory_mb": 900,
         "kind": "unbooked", "job_id": None}
    ]  # fmt: skip
    # The planner keeps jobs off it: a 2-GPU job waits, a 1-GPU job takes the other GPU.
    two = submit_batch(client, gpu_count=2)
    one = submit_batch(client, gpu_count=1)
    composed.scheduler.run_once()
    assert client.get(f"/api/v1/jobs/{two}").json()["state"] == "pending"
    assert client.get(f"/api/v1/jobs/{one}").json()["allocated_gpus"] == ["gpu-01-gpu1"]


def test_a_process_of_the_booking_owner_is_booked_not_flagged(client: TestClient) -> None:
    session = register(client)["session"]
    booking = client.post(
        "/api/v1/bookings",
        json={
            "node_id": NODE,
            "gpu_ids": ["gpu-01-gpu0"],
            "start": "2026-11-23T09:00:00Z",
            "end": "2026-11-23T12:00:00Z",
            "user": "bob",
        },
    )
    assert booking.status_code == 201, booking.text
    process = {"gpu_uuid": "GPU-0000", "pid": 77, "used_memory_mb": 900, "user": "bob",
               "command": "python mine.py", "job_id": None, "ancestors": []}  # fmt: skip
    heartbeat(client, session, [process])
    gpu = node_view(client)["gpus"][0]
    assert gpu["processes"][0]["kind"] == "booked"
    assert (gpu["foreign"], gpu["flags"]) == (True, [])
    assert gpu["holder"]["kind"] == "booking" and gpu["holder"]["user"] == "bob"


def test_a_booked_idle_gpu_is_flagged_after_the_idle_time(
    client: TestClient, clock: FakeClock
) -> None:
    session = register(client)["session"]
    client.post(
        "/api/v1/bookings",
        json={
            "node_id": NODE,
            "gpu_ids": ["gpu-01-gpu1"],
            "start": "2026-11-23T10:00:00Z",
            "end": "2026-11-23T14:00:00Z",
            "user": "bob",
        },
    )
    heartbeat(client, session)
    assert node_view(client)["gpus"][1]["flags"] == []
    clock.advance(31 * 60)
    heartbeat(client, session)
    assert node_view(client)["gpus"][1]["flags"] == ["idle_booking"]


# ---- batch jobs ----------------------------------------------------------------------------


def test_poll_events_and_exit_codes(client: TestClient, composed: Composed) -> None:
    session = register(client)["session"]
    job_id = submit_batch(client, time_limit_s=600, env={"A": "1"}, workdir="/tmp")
    composed.scheduler.run_once()
    desired = poll(client, session)
    [spec] = desired["jobs"]
    assert spec["id"] == job_id and spec["run"] == 0 and spec["user"] == "alice"
    assert spec["command"] == ["python", "train.py"] and spec["workdir"] == "/tmp"
    assert spec["env"] == [["A", "1"]]
    assert spec["gpus"] == [{"id": "gpu-01-gpu0", "index": 0, "uuid": "GPU-0000"}]
    assert spec["deadline"] == spec["started_at"] + 600
    assert spec["stop"] is None and spec["launched"] is None
    assert poll(client, session, desired["version"])["version"] == desired["version"]
    started = {"type": "started", "job_id": job_id, "run": 0, "pid": 4321, "at": 1.0}
    assert events(client, session, started) == [
        {"job_id": job_id, "run": 0, "type": "started", "state": "running"}
    ]
    again = poll(client, session, desired["version"])
    assert again["jobs"][0]["launched"] == {"pid": 4321, "host": "gpu-01.lab"}
    exited = {"type": "exited", "job_id": job_id, "run": 0, "exit_code": 3, "signal": None,
              "at": 2.0, "reason": "exited", "message": ""}  # fmt: skip
    assert events(client, session, exited)[0]["state"] == "failed"
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert (job["state"], job["exit_code"], job["message"]) == ("failed", 3, "exited with code 3")
    assert events(client, session, exited)[0]["state"] == "ignored"  # idempotent
    assert poll(client, session, again["version"])["jobs"] == []


def test_exit_zero_completes_and_time_limit_fails(client: TestClient, composed: Composed) -> None:
    session = register(client)["session"]
    done, slow = submit_batch(client), submit_batch(client, time_limit_s=60)
    composed.scheduler.run_once()
    base = {"type": "exited", "run": 0, "signal": None, "at": 2.0, "message": ""}
    results = events(
        client,
        session,
        {**base, "job_id": done, "exit_code": 0, "reason": "exited"},
        {**base, "job_id": slow, "exit_code": None, "signal": 15, "reason": "time_limit"},
    )
    assert [r["state"] for r in results] == ["completed", "failed"]
    assert client.get(f"/api/v1/jobs/{slow}").json()["message"] == "time limit (60 s) reached"


def test_a_lost_node_loses_and_requeues_its_batch_jobs(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    session = register(client)["session"]
    job_id = submit_batch(client)
    composed.scheduler.run_once()
    heartbeat(client, session)
    clock.advance(5)
    composed.scheduler.run_once()
    assert node_view(client)["state"] == "online"
    clock.advance(60)
    composed.nodes.started = float(clock.now()) - 120  # past the server-start grace period
    composed.scheduler.run_once()
    assert node_view(client)["state"] == "offline"
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert (job["state"], job["requeues"]) == ("pending", 1)
    # It cannot start on the offline node again.
    composed.scheduler.run_once()
    assert client.get(f"/api/v1/jobs/{job_id}").json()["state"] == "pending"
    # The agent comes back: the node is online and the job runs as run 1.
    heartbeat(client, session)
    composed.scheduler.run_once()
    [spec] = poll(client, session)["jobs"]
    assert (spec["id"], spec["run"]) == (job_id, 1)


def test_logs_are_shipped_and_read_back(client: TestClient, composed: Composed) -> None:
    session = register(client)["session"]
    job_id = submit_batch(client)
    composed.scheduler.run_once()
    url = f"/api/v1/agents/{NODE}/jobs/{job_id}/logs"
    params = {"session": session, "run": 0, "stream": "stdout"}
    first = client.post(url, params={**params, "offset": 0}, content=b"hello ", headers=AUTH)
    assert first.json() == {"size": 6, "truncated": False}
    client.post(url, params={**params, "offset": 6}, content=b"world\n", headers=AUTH)
    mismatch = client.post(url, params={**params, "offset": 3}, content=b"x", headers=AUTH)
    assert mismatch.status_code == 409
    assert (mismatch.json()["code"], mismatch.json()["size"]) == ("offset_mismatch", 12)
    read = client.get(f"/api/v1/jobs/{job_id}/logs", params={"offset": 6})
    assert read.content == b"world\n"
    assert read.headers["X-Log-Size"] == "12"
    assert read.headers["X-Job-State"] == "running"
    assert read.headers["X-Log-Truncated"] == "false"


# ---- history and metrics -----------------------------------------------------------------


def test_history_returns_minute_averages(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    session = register(client)["session"]
    start = clock.now()
    for util in (10.0, 30.0):
        heartbeat(client, session, readings=[reading(0, util=util), reading(1, util=0.0)])
        clock.advance(20)
    clock.advance(60)
    heartbeat(client, session, readings=[reading(0, util=90.0), reading(1, util=0.0)])
    clock.advance(60)
    composed.nodes.flush()
    response = client.get(
        f"/api/v1/nodes/{NODE}/history",
        params={
            "metric": "utilization",
            "start": "2026-11-23T10:00:00Z",
            "end": "2026-11-23T10:04:00Z",
            "step": 60,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["unit"], body["step"], body["agg"]) == ("%", 60, "avg")
    gpu0 = body["series"][0]
    assert gpu0["gpu"] == "gpu-01-gpu0"
    # Readings at :00 and :20 average to 20; the one at 10:01:40 is the next minute's.
    expected = [[start, 20.0], [start + 60, 90.0], [start + 120, None], [start + 180, None]]
    assert gpu0["points"] == expected
    bad = client.get(f"/api/v1/nodes/{NODE}/history", params={"metric": "fan"})
    assert bad.status_code == 400 and bad.json()["code"] == "bad_metric"
    missing = client.get("/api/v1/nodes/nope/history")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_node"


def test_metrics_use_the_dcgm_names(client: TestClient, composed: Composed) -> None:
    session = register(client)["session"]
    heartbeat(client, session)
    submit_batch(client, gpu_count=1, node_id="node-a")
    composed.scheduler.run_once()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    labels = tuple(
        sorted(
            {
                "gpu": "0",
                "UUID": "GPU-0000",
                "device": "nvidia0",
                "modelName": "NVIDIA H100 80GB HBM3",
                "Hostname": "gpu-01.lab",
                "node": "gpu-01",
            }.items()
        )
    )
    assert samples[("DCGM_FI_DEV_GPU_UTIL", labels)] == 50.0
    assert samples[("DCGM_FI_DEV_FB_USED", labels)] == 1000.0
    assert samples[("DCGM_FI_DEV_FB_FREE", labels)] == 80559.0
    assert samples[("DCGM_FI_DEV_GPU_TEMP", labels)] == 40.0
    assert samples[("DCGM_FI_DEV_POWER_USAGE", labels)] == 100.0
    assert samples[("procplan_node_up", (("node", "gpu-01"),))] == 1.0
    assert samples[("procplan_jobs_running", ())] == 1.0
    assert samples[("procplan_gpus_allocated", (("tenant", "default"),))] == 1.0
    assert samples[("procplan_job_wait_seconds_count", (("kind", "batch"),))] == 1.0
    assert samples[("procplan_cycle_duration_seconds_count", ())] >= 1.0
    # Config nodes without an agent export no GPU gauges (nothing was measured).
    assert not any(dict(key[1]).get("node") == "node-a" for key in samples)


def test_cluster_status_counts_offline_nodes(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    register(client)
    assert client.get("/api/v1/cluster/status").json()["online_nodes"] == 4
    clock.advance(120)
    composed.nodes.started = float(clock.now()) - 120
    status = client.get("/api/v1/cluster/status").json()
    assert (status["total_nodes"], status["online_nodes"]) == (4, 3)


def test_after_a_restart_known_nodes_get_time_to_report(
    client: TestClient, composed: Composed, clock: FakeClock, sqlite_url: str
) -> None:
    session = register(client)["session"]
    job_id = submit_batch(client)
    composed.scheduler.run_once()
    heartbeat(client, session)
    composed.nodes.flush()
    clock.advance(30)  # the server was down for 30 s: the agent is backing off
    restarted = compose(demo_settings(sqlite_url, agent_token=TOKEN), clock=clock)
    try:
        with admin_client(restarted) as again:
            restarted.scheduler.run_once()
            assert node_view(again)["state"] == "online"
            assert again.get(f"/api/v1/jobs/{job_id}").json()["state"] == "running"
            assert heartbeat(again, session).json() == {"ok": True}  # same session, no re-register
            clock.advance(61)  # ...but an agent that never comes back loses its node
            restarted.scheduler.run_once()
            assert node_view(again)["state"] == "offline"
            assert again.get(f"/api/v1/jobs/{job_id}").json()["requeues"] == 1
    finally:
        restarted.store.dispose()


def test_batch_jobs_go_only_to_nodes_with_an_agent(sqlite_url: str, clock: FakeClock) -> None:
    built = compose(
        demo_settings(sqlite_url, agent_token=TOKEN, batch_requires_agent=True), clock=clock
    )
    try:
        with admin_client(built) as client:
            register(client)
            pinned = submit_batch(client, node_id="node-a")
            anywhere = submit_batch(client, node_id=None, gpu_count=2)
            interactive = submit_batch(client, node_id="node-a", kind="interactive")
            built.scheduler.run_once()
            waiting = client.get(f"/api/v1/jobs/{pinned}").json()
            assert (waiting["state"], waiting["reason"]) == ("pending", "NoAgent")
            assert waiting["reason_text"] == "no node that fits it has an agent to run batch jobs"
            placed = client.get(f"/api/v1/jobs/{anywhere}").json()
            assert (placed["state"], placed["node_ids"]) == ("running", [NODE])
            assert client.get(f"/api/v1/jobs/{interactive}").json()["state"] == "running"
    finally:
        built.store.dispose()
