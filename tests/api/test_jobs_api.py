"""Native job routes (ADR 0005): submit, list, show, wait, heartbeat, release, cancel.

In-process (``client`` fixture: demo topology — node-a 4×A100, node-b 8×H100 and this host
with 8 simulated GPUs —, clock fixed at Monday 2026-11-23 10:00 UTC). Jobs start only when a
test runs a cycle (``composed.scheduler.run_once()``). Bad input is always a 400 naming the
field: never a 422, never a 500.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import TEST_ADMIN

from procplan.server import Composed
from procplan.testing import FakeClock

JSON_TYPE = "application/json; charset=utf-8"
ALICE = {"X-ProcPlan-User": "alice"}
NOW_ISO = "2026-11-23T10:00:00+00:00"
JOB_KEYS = [
    "id", "name", "user", "tenant_id", "kind", "state", "priority", "gpu_count", "nodes",
    "gpu_type", "gpu_memory_mb", "time_limit_s", "max_runtime_minutes", "node_id",
    "booking_id", "submitted_at", "started_at", "completed_at", "node_name", "node_ids",
    "allocated_gpus", "gpu_indices", "reason", "reason_text", "queue_position",
    "estimated_start", "estimated_wait", "waits_for", "borrowed", "preempt_at", "exit_code",
    "requeues", "preemptions", "preempted_by", "command", "workdir", "env", "stdout", "stderr",
    "array_id", "array_index", "pid", "host", "lease_expires_at", "message", "version",
    "cpu_cores", "memory_mb", "image", "gang_scheduling", "job_id",
]  # fmt: skip
GO_STATUS_KEYS = [
    "job_id", "state", "message", "allocated_gpus", "node_name", "queue_position",
    "estimated_wait", "reason", "estimated_start",
]  # fmt: skip


def assert_v1_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Native error body: ``error``, ``status`` and ``code``; JSON; never 422/500."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body: dict[str, Any] = response.json()
    assert list(body.keys()) == ["error", "status", "code"], body
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    if code is not None:
        assert body["code"] == code, body
    return body


def submit(client: TestClient, headers: dict[str, str] | None = None, **fields: Any) -> Any:
    body = {"command": ["python", "train.py"], **fields}
    return client.post("/api/v1/jobs", json=body, headers=ALICE if headers is None else headers)


def submitted(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = submit(client, **fields)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()["job"]
    return job


def get_job(client: TestClient, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


# ----------------------------------------------------------------------------------- submit


def test_submit_answers_201_with_the_go_keys_and_the_job(client: TestClient) -> None:
    response = submit(client, name="train")
    assert response.status_code == 201
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys()) == ["job_id", "status", "message", "job"]
    assert body["status"] == "submitted"
    assert body["message"] == "Job submitted successfully"
    job = body["job"]
    assert list(job.keys()) == JOB_KEYS
    assert isinstance(body["job_id"], str) and body["job_id"] == job["id"] == job["job_id"]


def test_submit_defaults(client: TestClient) -> None:
    job = submitted(client)
    assert job["name"] == "" and job["user"] == "alice" and job["tenant_id"] == "default"
    assert (job["kind"], job["state"], job["priority"]) == ("batch", "pending", 100)
    assert (job["gpu_count"], job["nodes"], job["time_limit_s"]) == (1, 1, None)
    assert job["submitted_at"] == NOW_ISO
    assert job["started_at"] is None and job["completed_at"] is None
    assert job["allocated_gpus"] is None and job["gpu_indices"] == [] and job["node_ids"] == []
    assert job["reason"] == "Held" and job["reason_text"]
    assert job["estimated_wait"] == 0 and job["queue_position"] == 0
    assert job["command"] == ["python", "train.py"] and job["env"] == {}
    assert job["lease_expires_at"] is None and isinstance(job["version"], int)


def test_the_job_is_the_signed_in_users_or_whom_an_admin_acts_for(client: TestClient) -> None:
    """``client`` is an admin: the header or the body's ``user`` name whom it acts for."""
    header = submit(client, headers={"X-ProcPlan-User": "carol"})
    assert header.json()["job"]["user"] == "carol"
    assert submit(client, headers={}, user="bob").json()["job"]["user"] == "bob"
    assert submit(client, headers={}).json()["job"]["user"] == TEST_ADMIN


def test_native_fields_round_trip(client: TestClient) -> None:
    job = submitted(
        client,
        kind="Interactive",
        name="dev",
        priority="high",
        gpu_count=2,
        gpu_type="A100",
        gpu_memory_mb=40_000,
        time_limit_s=5400,
        node_id="node-a",
        workdir="/home/alice",
        env={"A": "1", "B": "two"},
        stdout="/tmp/out",
        stderr="/tmp/err",
        pid=4242,
        host="ws-1",
    )
    assert (job["kind"], job["name"], job["priority"]) == ("interactive", "dev", 500)
    assert (job["gpu_count"], job["gpu_type"], job["gpu_memory_mb"]) == (2, "A100", 40_000)
    assert (job["time_limit_s"], job["max_runtime_minutes"]) == (5400, 90)
    assert (job["node_id"], job["workdir"]) == ("node-a", "/home/alice")
    assert job["env"] == {"A": "1", "B": "two"}
    assert (job["stdout"], job["stderr"], job["pid"], job["host"]) == (
        "/tmp/out",
        "/tmp/err",
        4242,
        "ws-1",
    )
    assert job["lease_expires_at"] == "2026-11-23T10:00:30+00:00"  # interactive: a lease


@pytest.mark.parametrize(
    ("fields", "key", "expected"),
    [
        ({"gpus": 3}, "gpu_count", 3),
        ({"gpu_kind": "H100"}, "gpu_type", "H100"),
        ({"environment": {"X": "y"}}, "env", {"X": "y"}),
        ({"tenant": "default"}, "tenant_id", "default"),
        ({"max_runtime_minutes": 30}, "time_limit_s", 1800),
        ({"max_runtime_minutes": 0}, "time_limit_s", None),
        ({"priority": "urgent"}, "priority", 1000),
        ({"priority": "-5"}, "priority", -5),
        ({"priority": 7}, "priority", 7),
        ({"gpu_count": 0}, "gpu_count", 0),
        ({"gpu_memory_mb": 0}, "gpu_memory_mb", None),
        ({"command": ["a"], "args": ["b", "c"]}, "command", ["a", "b", "c"]),
        ({"command": None, "script": "echo hi"}, "command", ["/bin/sh", "-c", "echo hi"]),
        ({"name": None}, "name", ""),
    ],
)
def test_aliases_and_go_names(
    client: TestClient, fields: dict[str, Any], key: str, expected: Any
) -> None:
    assert submitted(client, **fields)[key] == expected


def test_array_range(client: TestClient) -> None:
    response = submit(client, name="sweep", array="0-3")
    assert response.status_code == 201
    body = response.json()
    assert list(body.keys()) == ["job_id", "status", "message", "job", "job_ids", "array_id"]
    assert len(body["job_ids"]) == 4 and body["job_ids"][0] == body["job_id"]
    assert all(isinstance(job_id, str) for job_id in body["job_ids"])
    assert isinstance(body["array_id"], str)
    jobs = [get_job(client, job_id) for job_id in body["job_ids"]]
    assert [j["array_index"] for j in jobs] == [0, 1, 2, 3]
    assert [j["name"] for j in jobs] == [f"sweep[{i}]" for i in range(4)]
    assert {j["array_id"] for j in jobs} == {body["array_id"]}


@pytest.mark.parametrize(
    ("array", "indices"),
    [("0-6:3", [0, 3, 6]), ("1,3,7", [1, 3, 7]), ("7", [7]), ("5-6,1", [1, 5, 6])],
)
def test_array_forms(client: TestClient, array: str, indices: list[int]) -> None:
    body = submit(client, array=array).json()
    assert [get_job(client, i)["array_index"] for i in body["job_ids"]] == indices


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"gpu_count": True}, "gpu_count must be an integer"),
        ({"gpu_count": "two"}, "gpu_count must be an integer"),
        ({"gpu_count": 1.5}, "gpu_count must be an integer"),
        ({"gpu_count": 2.0}, "gpu_count must be an integer"),
        ({"gpu_count": -1}, "gpu_count must be an integer between 0"),
        ({"gpu_count": 10**30}, "gpu_count must be an integer"),
        ({"gpu_count": "9" * 5000}, "gpu_count must be an integer"),  # past int()'s digit limit
        ({"gpu_count": " 2 x"}, "gpu_count must be an integer"),
        ({"gpu_count": 1, "gpus": 2}, "give only one of 'gpu_count' and 'gpus'"),
        ({"nodes": 0}, "nodes must be an integer between 1"),
        ({"priority": "highest"}, "priority must be an integer or one of"),
        ({"priority": True}, "priority must be an integer or one of"),
        ({"priority": 10**9}, "priority must be between"),
        ({"kind": "weird"}, "kind must be 'batch' or 'interactive'"),
        ({"kind": 1}, "kind must be 'batch' or 'interactive'"),
        ({"command": "python train.py"}, "command must be an array of strings"),
        ({"command": ["python", 3]}, "command must be an array of strings"),
        ({"args": "x"}, "args must be an array of strings"),
        ({"script": "echo"}, "give either 'command' (with 'args') or 'script', not both"),
        ({"script": ["echo"], "command": None}, "script must be a string"),
        ({"env": {"A": 1}}, "env must be an object of string values"),
        ({"environment": ["A=1"]}, "environment must be an object of string values"),
        ({"env": {}, "environment": {"A": "1"}}, "give only one of 'env' and 'environment'"),
        ({"array": "x"}, "array item 'x' must look like"),
        ({"array": "5-1"}, "array item '5-1' is an empty range"),
        ({"array": "0-9:0"}, "array item '0-9:0' is an empty range"),
        ({"array": 5}, "array must be a string"),
        ({"array": "0-99999999999"}, "array has more than 10000 tasks"),
        ({"time_limit_s": 0}, "time_limit_s must be an integer between 1"),
        ({"time_limit_s": 60, "max_runtime_minutes": 1}, "give only one of"),
        ({"max_runtime_minutes": -1}, "max_runtime_minutes must be an integer between 0"),
        ({"time_limit_s": 40 * 86400}, "time limit must be at most"),
        ({"booking_id": "x"}, "booking_id must be an integer"),
        ({"booking_id": 2**63}, "booking_id must be an integer"),
        ({"pid": 0}, "pid must be an integer between 1"),
        ({"gang_scheduling": "yes"}, "gang_scheduling must be true or false"),
        ({"cpu_cores": -2}, "cpu_cores must be an integer"),
        ({"image": 5}, "image must be a string"),
        ({"tenant_id": 5}, "tenant_id must be a string"),
        ({"tenant": "a", "tenant_id": "b"}, "give only one of 'tenant' and 'tenant_id'"),
        ({"name": "x" * 300}, "name must be at most 256 characters"),
        ({"user": 5}, "user must be a string"),
        ({"workdir": 5}, "workdir must be a string"),
        ({"node_id": "ghost"}, "Unknown node id 'ghost'"),
        ({"gpu_type": "V100"}, "no node has GPUs of kind 'V100'"),
        ({"gpu_count": 2000}, "requested 2000 GPU(s)"),
        ({"gpu_count": 3, "nodes": 2}, "gpu_count must be a multiple of nodes"),
        ({"bogus": 1}, "unknown field 'bogus'"),
    ],
)
def test_submit_bad_input_is_400_naming_the_field(
    client: TestClient, body: dict[str, Any], needle: str
) -> None:
    error = assert_v1_error(submit(client, headers={}, **body), 400)
    assert needle in error["error"], error


@pytest.mark.parametrize(
    ("content", "needle"),
    [("{not json", "Invalid JSON payload"), ("[1, 2]", "JSON payload must be an object")],
)
def test_submit_bad_json(client: TestClient, content: str, needle: str) -> None:
    response = client.post(
        "/api/v1/jobs", content=content, headers={"content-type": "application/json"}
    )
    assert needle in assert_v1_error(response, 400, "invalid_request")["error"]


def test_submit_to_an_unknown_tenant_or_booking_is_404(client: TestClient) -> None:
    assert_v1_error(submit(client, tenant_id="nope"), 404, "unknown_tenant")
    assert_v1_error(submit(client, booking_id=99), 404, "unknown_booking")


# ------------------------------------------------------------------------------------- list


def test_list_newest_first_with_total(client: TestClient) -> None:
    ids = [submitted(client, name=f"j{i}")["id"] for i in range(3)]
    body = client.get("/api/v1/jobs").json()
    assert list(body.keys()) == ["jobs", "total"]
    assert body["total"] == 3
    assert [j["id"] for j in body["jobs"]] == ids[::-1]
    assert list(body["jobs"][0].keys()) == JOB_KEYS


def test_list_filters(client: TestClient, composed: Composed) -> None:
    a = submitted(client, gpu_count=1, node_id="node-a")
    submit(client, headers={"X-ProcPlan-User": "bob"}, kind="interactive", node_id="node-b")
    c = submitted(client)
    composed.jobs.cancel(int(c["id"]))
    composed.scheduler.run_once()

    def ids(**params: Any) -> list[str]:
        response = client.get("/api/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        return [j["id"] for j in response.json()["jobs"]]

    assert len(ids(user="alice")) == 2 and len(ids(user="bob")) == 1
    assert ids(state="cancelled") == [c["id"]]
    assert c["id"] not in ids(state="active")
    assert len(ids(state="active")) == 2
    assert set(ids(state="running,cancelled")) >= {a["id"], c["id"]}
    assert len(ids(kind="interactive")) == 1 and len(ids(kind="batch")) == 2
    assert len(ids(tenant_id="default")) == 3 and ids(tenant_id="other") == []
    assert ids(node_id="node-a") == [a["id"]]
    assert len(ids(limit=1)) == 1 and len(ids(offset=2)) == 1
    assert len(ids(limit="", offset="", user="", state="")) == 3  # empty = not given


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"state": "sleeping"}, "state must be a comma list of pending, running"),
        ({"kind": "both"}, "kind must be 'batch' or 'interactive'"),
        ({"limit": "0"}, "limit must be an integer between 1 and 1000"),
        ({"limit": "1001"}, "limit must be an integer between 1 and 1000"),
        ({"limit": "ten"}, "limit must be an integer between 1 and 1000"),
        ({"offset": "-1"}, "offset must be an integer between 0"),
        ({"offset": str(2**64)}, "offset must be an integer between 0"),
    ],
)
def test_list_bad_parameters(client: TestClient, params: dict[str, str], needle: str) -> None:
    error = assert_v1_error(client.get("/api/v1/jobs", params=params), 400, "invalid_request")
    assert needle in error["error"]


# -------------------------------------------------------------------------------------- get


def test_get_puts_the_go_status_keys_first(client: TestClient) -> None:
    job_id = submitted(client)["id"]
    body = get_job(client, job_id)
    assert list(body.keys())[: len(GO_STATUS_KEYS)] == GO_STATUS_KEYS
    assert set(body.keys()) == set(JOB_KEYS)
    assert body["job_id"] == body["id"] == job_id


def test_running_job_shows_its_allocation(client: TestClient, composed: Composed) -> None:
    job_id = submitted(client, gpu_count=2, node_id="node-b", time_limit_s=3600)["id"]
    composed.scheduler.run_once()
    job = get_job(client, job_id)
    assert job["state"] == "running" and job["started_at"] == NOW_ISO
    assert job["node_ids"] == ["node-b"] and job["node_name"] == "Demo Node B"
    assert len(job["allocated_gpus"]) == 2
    assert all(g.startswith("node-b-gpu") for g in job["allocated_gpus"])
    expected = sorted(int(g.rsplit("gpu", 1)[1]) for g in job["allocated_gpus"])
    assert job["gpu_indices"] == expected
    assert job["reason"] is None and job["estimated_wait"] == 0


def test_pending_job_shows_reason_position_and_estimate(
    client: TestClient, composed: Composed
) -> None:
    submitted(client, gpu_count=4, node_id="node-a", time_limit_s=3600)
    composed.scheduler.run_once()
    waiting = submitted(client, gpu_count=1, node_id="node-a")["id"]
    composed.scheduler.run_once()
    job = get_job(client, waiting)
    assert (job["state"], job["reason"], job["queue_position"]) == ("pending", "Resources", 1)
    assert job["estimated_start"] == "2026-11-23T11:00:00+00:00"
    assert job["estimated_wait"] == 3600 * 10**9


@pytest.mark.parametrize("raw", ["999", "abc", "1.5", "0x1", str(2**63), "-" + "9" * 40])
def test_unknown_or_malformed_ids_are_404(client: TestClient, raw: str) -> None:
    for response in (
        client.get(f"/api/v1/jobs/{raw}"),
        client.get(f"/api/v1/jobs/{raw}/wait", params={"timeout": 0}),
        client.post(f"/api/v1/jobs/{raw}/heartbeat"),
        client.post(f"/api/v1/jobs/{raw}/release", json={"exit_code": 0}),
        client.delete(f"/api/v1/jobs/{raw}"),
    ):
        assert_v1_error(response, 404, "unknown_job")


# ------------------------------------------------------------------------------------- wait


def test_wait_without_version_answers_at_once(client: TestClient) -> None:
    job = submitted(client)
    began = time.monotonic()
    response = client.get(f"/api/v1/jobs/{job['id']}/wait", params={"timeout": 30})
    assert response.status_code == 200 and time.monotonic() - began < 5
    assert list(response.json().keys()) == JOB_KEYS


def test_wait_times_out_with_the_job_unchanged(client: TestClient) -> None:
    job = submitted(client)
    params = {"timeout": 0.2, "version": job["version"]}
    began = time.monotonic()
    body = client.get(f"/api/v1/jobs/{job['id']}/wait", params=params).json()
    assert time.monotonic() - began >= 0.2
    assert body["version"] == job["version"] and body["state"] == "pending"


@pytest.mark.parametrize("timeout", ["-5", "0"])
def test_wait_timeout_is_clamped_at_zero(client: TestClient, timeout: str) -> None:
    job = submitted(client)
    params = {"timeout": timeout, "version": str(job["version"])}
    began = time.monotonic()
    assert client.get(f"/api/v1/jobs/{job['id']}/wait", params=params).status_code == 200
    assert time.monotonic() - began < 5


def test_wait_returns_when_the_job_changes(client: TestClient, composed: Composed) -> None:
    job = submitted(client)
    result: dict[str, Any] = {}

    def waiter() -> None:
        params = {"timeout": 30, "version": job["version"]}
        result["body"] = client.get(f"/api/v1/jobs/{job['id']}/wait", params=params).json()

    thread = threading.Thread(target=waiter)
    began = time.monotonic()
    thread.start()
    time.sleep(0.3)
    composed.scheduler.run_once()
    thread.join(20)
    assert not thread.is_alive()
    assert time.monotonic() - began < 20
    assert result["body"]["state"] == "running"
    assert result["body"]["version"] > job["version"]


def test_wait_renews_an_interactive_lease(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    job = submitted(client, kind="interactive")
    clock.advance(20)
    params = {"timeout": 0, "version": job["version"]}
    body = client.get(f"/api/v1/jobs/{job['id']}/wait", params=params).json()
    assert body["lease_expires_at"] == "2026-11-23T10:00:50+00:00"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"timeout": "soon"}, "timeout must be a number of seconds"),
        ({"timeout": "nan"}, "timeout must be a number of seconds"),
        ({"version": "x"}, "version must be an integer"),
        ({"version": "-1"}, "version must be an integer between 0"),
        ({"version": "1.5"}, "version must be an integer"),
    ],
)
def test_wait_bad_parameters(client: TestClient, params: dict[str, str], needle: str) -> None:
    job_id = submitted(client)["id"]
    response = client.get(f"/api/v1/jobs/{job_id}/wait", params=params)
    assert needle in assert_v1_error(response, 400, "invalid_request")["error"]


# ------------------------------------------------------------------------ heartbeat, release


def test_heartbeat_renews_the_lease(client: TestClient, clock: FakeClock) -> None:
    job = submitted(client, kind="interactive")
    clock.advance(10)
    response = client.post(f"/api/v1/jobs/{job['id']}/heartbeat")
    assert response.status_code == 200
    body = response.json()
    assert list(body.keys()) == ["state", "lease_expires_at", "preempt_at", "version"]
    assert body == {
        "state": "pending",
        "lease_expires_at": "2026-11-23T10:00:40+00:00",
        "preempt_at": None,
        "version": job["version"],  # a heartbeat wakes no waiter
    }


def test_heartbeat_of_a_finished_job_says_so(client: TestClient, composed: Composed) -> None:
    job_id = submitted(client, kind="interactive")["id"]
    composed.jobs.cancel(int(job_id))
    body = client.post(f"/api/v1/jobs/{job_id}/heartbeat").json()
    assert body["state"] == "cancelled" and body["lease_expires_at"] is None


@pytest.mark.parametrize(
    ("payload", "state", "exit_code"),
    [
        ({"exit_code": 0}, "completed", 0),
        ({"exit_code": None}, "completed", None),
        (None, "completed", None),
        ({"exit_code": 3}, "failed", 3),
        ({"exit_code": -9}, "failed", -9),
    ],
)
def test_release_a_running_job(
    client: TestClient,
    composed: Composed,
    payload: dict[str, Any] | None,
    state: str,
    exit_code: int | None,
) -> None:
    job_id = submitted(client, kind="interactive")["id"]
    composed.scheduler.run_once()
    response = client.post(f"/api/v1/jobs/{job_id}/release", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body.keys()) == JOB_KEYS
    assert (body["state"], body["exit_code"], body["completed_at"]) == (state, exit_code, NOW_ISO)


def test_release_pending_cancels_and_finished_is_409(client: TestClient) -> None:
    job_id = submitted(client)["id"]
    response = client.post(f"/api/v1/jobs/{job_id}/release", json={"exit_code": 0})
    assert response.json()["state"] == "cancelled"
    again = client.post(f"/api/v1/jobs/{job_id}/release", json={"exit_code": 0})
    assert_v1_error(again, 409, "job_finished")


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"exit_code": "x"}, "exit_code must be an integer"),
        ({"exit_code": True}, "exit_code must be an integer"),
        ({"exit_code": 1.5}, "exit_code must be an integer"),
        ({"exit_code": 2**40}, "exit_code must be an integer"),
        ({"code": 1}, "unknown field 'code'"),
    ],
)
def test_release_bad_body(client: TestClient, payload: dict[str, Any], needle: str) -> None:
    job_id = submitted(client)["id"]
    response = client.post(f"/api/v1/jobs/{job_id}/release", json=payload)
    assert needle in assert_v1_error(response, 400, "invalid_request")["error"]


# ----------------------------------------------------------------------------------- cancel


def test_cancel_pending_running_and_finished(client: TestClient, composed: Composed) -> None:
    pending = submitted(client, gpu_count=1)["id"]
    running = submitted(client, gpu_count=1, node_id="node-a")["id"]
    composed.scheduler.run_once()
    for job_id in (pending, running):
        response = client.delete(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert list(body.keys()) == ["message", "job"]
        assert body["message"] == "Job cancelled successfully"
        assert body["job"]["state"] == "cancelled" and body["job"]["id"] == job_id
    error = assert_v1_error(client.delete(f"/api/v1/jobs/{pending}"), 409, "job_finished")
    assert error["error"] == f"Job {pending} is already cancelled"


def test_cancel_unknown_is_404(client: TestClient) -> None:
    error = assert_v1_error(client.delete("/api/v1/jobs/77"), 404, "unknown_job")
    assert error["error"] == "Job '77' does not exist"


# ------------------------------------------------------------------------------ robustness


def test_wrong_methods_are_json_405(client: TestClient) -> None:
    assert_v1_error(client.put("/api/v1/jobs"), 405, "method_not_allowed")
    assert_v1_error(client.post("/api/v1/jobs/1"), 405, "method_not_allowed")
    assert_v1_error(client.get("/api/v1/jobs/1/heartbeat"), 405, "method_not_allowed")
    assert_v1_error(client.get("/api/v1/jobs/1/release"), 405, "method_not_allowed")


def test_openapi_lists_the_job_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        "/api/v1/jobs": {"get", "post"},
        "/api/v1/jobs/{raw_id}": {"get", "delete"},
        "/api/v1/jobs/{raw_id}/wait": {"get"},
        "/api/v1/jobs/{raw_id}/heartbeat": {"post"},
        "/api/v1/jobs/{raw_id}/release": {"post"},
        "/api/v1/cluster/status": {"get"},
        "/api/v1/tenants": {"get", "post"},
        "/api/v1/tenants/{tenant_id}": {"get", "patch"},
        "/api/v1/tenants/{tenant_id}/members/{user}": {"put", "delete"},
        "/acquire": {"post"},
        "/status": {"get"},
        "/jobs": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
