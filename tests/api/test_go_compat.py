"""The Go "GPU Scheduler MVP" REST dialect (COMPAT.md §3), byte-level: its request fields, its
response keys and messages, and the listed fixes (400 not 500, 409 for a finished job, usage not
client-settable, omitted quotas unlimited). In-process, demo topology, fixed clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import admin_client

from procplan.server import Composed

JSON_TYPE = "application/json; charset=utf-8"
# The seed's README example, verbatim.
SEED_JOB = {
    "tenant_id": "default",
    "name": "api-job",
    "priority": 500,
    "gpu_count": 1,
    "gpu_memory_mb": 16000,
    "cpu_cores": 4,
    "memory_mb": 32000,
    "image": "nvidia/cuda:12.0-base",
}
# What a Go client sends for a struct whose optional fields were left at their zero values.
GO_ZERO_VALUES = {
    "tenant_id": "default",
    "name": "zeros",
    "priority": 100,
    "gpu_count": 1,
    "gpu_memory_mb": 0,
    "cpu_cores": 0,
    "memory_mb": 0,
    "script": "",
    "environment": None,
    "image": "",
    "command": None,
    "args": None,
    "gang_scheduling": False,
    "max_runtime_minutes": 0,
}
GO_STATUS_KEYS = [
    "job_id", "state", "message", "allocated_gpus", "node_name", "queue_position",
    "estimated_wait",
]  # fmt: skip
CLUSTER_KEYS = [
    "total_gpus", "available_gpus", "total_nodes", "online_nodes", "total_jobs",
    "pending_jobs", "running_jobs",
]  # fmt: skip


def go_submit(client: TestClient, **fields: Any) -> Any:
    return client.post("/api/v1/jobs", json={**SEED_JOB, **fields})


def go_run(client: TestClient, **fields: Any) -> str:
    """A seed-like job that can start on the demo nodes, whose GPUs' memory is unknown: Go's
    zero ``gpu_memory_mb`` (= no memory requirement)."""
    return go_submitted(client, **{"gpu_memory_mb": 0, **fields})


def go_submitted(client: TestClient, **fields: Any) -> str:
    response = go_submit(client, **fields)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def test_health_is_exact(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.content == b'{"status":"healthy"}'


def test_health_is_503_when_the_database_is_gone(composed: Composed, sqlite_url: str) -> None:
    with admin_client(composed) as client:
        composed.store.engine.dispose()
        Path(sqlite_url.removeprefix("sqlite:///")).unlink()  # reconnecting finds no tables
        response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == 503 and body["error"].startswith("unhealthy")


# ------------------------------------------------------------------------------------- jobs


def test_submit_the_seed_example(client: TestClient) -> None:
    response = go_submit(client)
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("status", "message")} == {
        "status": "submitted",
        "message": "Job submitted successfully",
    }
    assert isinstance(body["job_id"], str) and body["job_id"].isdigit()
    job = body["job"]
    assert (job["tenant_id"], job["name"], job["priority"]) == ("default", "api-job", 500)
    assert (job["gpu_count"], job["gpu_memory_mb"]) == (1, 16000)
    assert (job["cpu_cores"], job["memory_mb"], job["image"]) == (4, 32000, "nvidia/cuda:12.0-base")
    assert job["gang_scheduling"] is False and job["state"] == "pending"


def test_submit_accepts_go_zero_values(client: TestClient) -> None:
    response = client.post("/api/v1/jobs", json=GO_ZERO_VALUES)
    assert response.status_code == 201, response.text
    job = response.json()["job"]
    assert job["time_limit_s"] is None and job["max_runtime_minutes"] is None
    assert job["gpu_memory_mb"] is None and job["command"] == [] and job["env"] == {}


def test_submit_go_command_args_environment_runtime(client: TestClient) -> None:
    response = go_submit(
        client,
        command=["python", "train.py"],
        args=["--epochs", "3"],
        environment={"SEED": "1"},
        max_runtime_minutes=90,
        gang_scheduling=True,
    )
    job = response.json()["job"]
    assert job["command"] == ["python", "train.py", "--epochs", "3"]
    assert job["env"] == {"SEED": "1"}
    assert (job["time_limit_s"], job["max_runtime_minutes"]) == (5400, 90)
    assert job["gang_scheduling"] is True


def test_submit_script(client: TestClient) -> None:
    job = go_submit(client, script="nvidia-smi && python train.py").json()["job"]
    assert job["command"] == ["/bin/sh", "-c", "nvidia-smi && python train.py"]


@pytest.mark.parametrize(
    "fields",
    [
        {"priority": "100"},
        {"gpu_count": "1"},
        {"max_runtime_minutes": "90"},
    ],
)
def test_integer_strings_are_accepted(client: TestClient, fields: dict[str, Any]) -> None:
    assert go_submit(client, **fields).status_code == 201


@pytest.mark.parametrize(
    "fields",
    [
        {"priority": 1.5},
        {"gpu_count": True},
        {"gpu_count": None, "gpus": "x"},
        {"environment": {"A": 1}},
        {"command": "python"},
        {"args": [1]},
        {"gang_scheduling": 1},
        {"max_runtime_minutes": -5},
        {"cpu_cores": "four"},
        {"memory_mb": 1.5},
        {"image": ["x"]},
        {"script": 7},
    ],
)
def test_validation_is_400_never_500(client: TestClient, fields: dict[str, Any]) -> None:
    response = go_submit(client, **fields)
    assert response.status_code == 400, response.text
    assert list(response.json().keys()) == ["error", "status", "code"]


def test_quota_refusal_is_403_with_the_go_message(client: TestClient) -> None:
    client.post("/api/v1/tenants", json={"name": "t1", "max_gpus": 1, "allow_borrow": False})
    response = go_submit(client, tenant_id="t1", gpu_count=2)
    assert response.status_code == 403
    assert response.json() == {
        "error": "quota exceeded for tenant t1: max_gpus requested=2, quota=1, current=0",
        "status": 403,
        "code": "quota_exceeded",
    }


def test_list_with_go_parameters(client: TestClient, composed: Composed) -> None:
    first = go_submitted(client)
    second = go_submitted(client)
    composed.jobs.cancel(int(second))
    body = client.get(
        "/api/v1/jobs", params={"tenant_id": "default", "state": "pending", "limit": 50}
    ).json()
    assert body["total"] == 1 and [j["id"] for j in body["jobs"]] == [first]
    job = body["jobs"][0]
    for key in ("id", "tenant_id", "name", "state", "priority", "gpu_count", "gpu_memory_mb"):
        assert key in job
    for key in ("submitted_at", "started_at", "completed_at"):
        assert key in job
    everything = client.get("/api/v1/jobs", params={"limit": 50, "offset": 0}).json()
    assert everything["total"] == 2


def test_job_states_are_the_go_names(client: TestClient, composed: Composed) -> None:
    ids = [go_run(client, gpu_count=1) for _ in range(3)]
    composed.scheduler.run_once()
    composed.jobs.release(int(ids[0]), 0)
    composed.jobs.release(int(ids[1]), 1)
    composed.jobs.cancel(int(ids[2]))
    states = [client.get(f"/api/v1/jobs/{i}").json()["state"] for i in ids]
    assert states == ["completed", "failed", "cancelled"]


def test_status_of_a_pending_job(client: TestClient, composed: Composed) -> None:
    go_run(client, gpu_count=4, node_id="node-a", max_runtime_minutes=60)
    composed.scheduler.run_once()
    waiting = go_run(client, gpu_count=1, node_id="node-a")
    composed.scheduler.run_once()
    body = client.get(f"/api/v1/jobs/{waiting}").json()
    assert list(body.keys())[: len(GO_STATUS_KEYS)] == GO_STATUS_KEYS
    assert {k: body[k] for k in GO_STATUS_KEYS} == {
        "job_id": waiting,
        "state": "pending",
        "message": "",
        "allocated_gpus": None,
        "node_name": None,
        "queue_position": 1,
        "estimated_wait": 3_600_000_000_000,  # ns: Go's time.Duration
    }
    assert body["reason"] == "Resources"
    assert body["estimated_start"] == "2026-11-23T11:00:00+00:00"


def test_status_of_a_running_job(client: TestClient, composed: Composed) -> None:
    job_id = go_run(client, gpu_count=2, node_id="node-b")
    composed.scheduler.run_once()
    body = client.get(f"/api/v1/jobs/{job_id}").json()
    assert body["state"] == "running" and body["node_name"] == "Demo Node B"
    assert len(body["allocated_gpus"]) == 2
    assert all(isinstance(g, str) for g in body["allocated_gpus"])
    assert (body["queue_position"], body["estimated_wait"]) == (0, 0)


def test_delete(client: TestClient) -> None:
    job_id = go_submitted(client)
    response = client.delete(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json()["message"] == "Job cancelled successfully"
    assert client.delete(f"/api/v1/jobs/{job_id}").status_code == 409  # fix: not 200/500
    assert client.delete("/api/v1/jobs/4242").status_code == 404
    assert client.delete("/api/v1/jobs/not-a-number").status_code == 404


# ---------------------------------------------------------------------------------- tenants


def test_create_tenant_with_the_go_body(client: TestClient) -> None:
    response = client.post(
        "/api/v1/tenants",
        json={
            "name": "ml-team",
            "email": "ml@example.org",
            "max_gpus": 10,
            "max_gpu_memory_mb": 0,
            "max_cpu_cores": 32,
            "max_memory_mb": 256000,
            "max_concurrent_jobs": 4,
            "priority_tier": 1,
            "fair_share_weight": 1.5,
            "allow_preemption": True,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == body["name"] == "ml-team"
    assert (body["max_gpus"], body["max_concurrent_jobs"], body["priority_tier"]) == (10, 4, 1)
    assert (body["current_gpus"], body["current_jobs"], body["usage_gpu_hours"]) == (0, 0, 0.0)
    listed = client.get("/api/v1/tenants").json()
    assert "ml-team" in [t["id"] for t in listed["tenants"]]
    assert client.get("/api/v1/tenants/ml-team").json()["email"] == "ml@example.org"


@pytest.mark.parametrize("field", ["current_gpus", "current_jobs", "usage_gpu_hours"])
def test_tenant_usage_is_not_client_settable(client: TestClient, field: str) -> None:
    response = client.post("/api/v1/tenants", json={"name": "t", field: 0})
    assert response.status_code == 400
    assert response.json()["error"] == f"{field} is not client-settable"


# ---------------------------------------------------------------------------------- cluster


def test_cluster_status(client: TestClient, composed: Composed) -> None:
    go_run(client, gpu_count=2, node_id="node-a")
    go_run(client, gpu_count=1)
    composed.scheduler.run_once()
    go_run(client, gpu_count=8, node_id="node-b", max_runtime_minutes=60)
    go_run(client, gpu_count=8, node_id="node-b")
    composed.scheduler.run_once()
    response = client.get("/api/v1/cluster/status")
    assert response.status_code == 200
    body = response.json()
    assert list(body.keys())[: len(CLUSTER_KEYS)] == CLUSTER_KEYS
    assert all(isinstance(body[k], int) for k in CLUSTER_KEYS)
    total = composed.bookings.topology().gpu_count
    assert (body["total_gpus"], body["total_nodes"], body["online_nodes"]) == (total, 3, 3)
    assert (body["total_jobs"], body["pending_jobs"], body["running_jobs"]) == (4, 1, 3)
    assert body["available_gpus"] == total - 11
