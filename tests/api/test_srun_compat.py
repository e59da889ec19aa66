"""local-gpu-scheduler's API (COMPAT.md §2): ``POST /acquire`` (blocking), ``GET /status``,
``GET /jobs``, so its unmodified ``srun`` works against us.

In-process over the demo topology, whose third node is the server's own host (named
``workstation`` by tests/conftest.py) with 8 simulated GPUs. ``/acquire`` jobs belong to the
signed-in user, who may name only their own processes (never the server's), so the tests use
a child process of theirs (alive) and the PID of a reaped child (dead). Tests that need jobs
to start run the scheduler's thread (``scheduling`` fixture).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from starlette.testclient import TestClient
from tests.conftest import TEST_ADMIN, admin_client

from procplan.config import Settings
from procplan.core.errors import DomainError
from procplan.core.jobs import JobState
from procplan.server import Composed, compose
from procplan.store.jobs_repo import JobFilter
from procplan.testing import FakeClock, ThreadedServer, wait_until

JSON_TYPE = "application/json; charset=utf-8"
LOCAL = "workstation"  # the server's own node, as tests/conftest.py names it
HOST = socket.gethostname()
LOCAL_GPUS = 8
STATUS_KEYS = [
    "service", "version", "uptime_s", "port", "gpus_total", "gpus_allocated", "jobs_running",
    "jobs_queued", "jobs_total",
]  # fmt: skip
JOBS_ENTRY_KEYS = ["id", "gpus", "num_gpus", "status", "pid"]


# The srun client's PID: a process of the user running the tests, but not the server itself
# (in-process, that is this test process, and nobody may name the server's PID).
CLIENT = subprocess.Popen(["sleep", "86400"], stdin=subprocess.DEVNULL)
CLIENT_PID = CLIENT.pid


@pytest.fixture(scope="module", autouse=True)
def _client_process() -> Iterator[None]:
    yield
    CLIENT.kill()
    CLIENT.wait()


@pytest.fixture
def scheduling(composed: Composed) -> Iterator[Composed]:
    """The cycle running in its thread, as in ``procplan server``. Afterwards every job still
    pending is cancelled, so that a failed test leaves no ``/acquire`` blocked (the test
    client waits for its requests before it closes)."""
    composed.scheduler.start()
    yield composed
    pending, _total = composed.jobs.list(JobFilter(states=frozenset({JobState.PENDING})))
    for job in pending:
        with contextlib.suppress(DomainError):
            composed.jobs.cancel(job.id)
    composed.scheduler.stop()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not psutil.pid_exists(child.pid)
    return child.pid


def assert_srun_error(response: Any, status: int, message: str | None = None) -> str:
    """local-gpu-scheduler's error: JSON with ``error`` (and our ``status``), no ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys()) == ["error", "status"], body
    if message is not None:
        assert body["error"] == message
    error: str = body["error"]
    return error


def acquire(client: TestClient, num_gpus: int | None = None) -> Any:
    body: dict[str, Any] = {"pid": CLIENT_PID}
    if num_gpus is not None:
        body["num_gpus"] = num_gpus
    return client.post("/acquire", json=body)


def in_thread(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        result["response"] = call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def pending_local_job(client: TestClient, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = [job for job in client.get("/jobs").json() if job["status"] == "queued"]
        if queued:
            entry: dict[str, Any] = queued[0]
            return entry
        time.sleep(0.05)
    raise AssertionError("no queued job appeared")


# ---------------------------------------------------------------------------------- acquire


def test_acquire_answers_job_id_and_cuda_visible_devices(
    client: TestClient, scheduling: Composed
) -> None:
    response = acquire(client, 2)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys()) == ["job_id", "gpus"]
    assert isinstance(body["job_id"], str) and body["job_id"].isdigit()
    assert body["gpus"] == "0,1"
    job = client.get(f"/api/v1/jobs/{body['job_id']}").json()
    assert (job["kind"], job["state"], job["gpu_count"]) == ("interactive", "running", 2)
    assert job["user"] == TEST_ADMIN  # the signed-in user, whose own process the PID is
    assert (job["pid"], job["node_id"], job["node_ids"]) == (CLIENT_PID, LOCAL, [LOCAL])
    assert job["host"] == HOST and job["gpu_indices"] == [0, 1]
    stored = scheduling.jobs.get(int(body["job_id"]))
    assert stored.extra.get("client") == "srun"  # its PID exiting completes it


def test_acquire_defaults_to_one_gpu(client: TestClient, scheduling: Composed) -> None:
    assert acquire(client).json()["gpus"] == "0"


def test_acquire_zero_gpus_hides_every_gpu(client: TestClient, scheduling: Composed) -> None:
    body = acquire(client, 0).json()
    assert body["gpus"] == "-1"  # fix: not "", which srun rejects


def test_acquire_blocks_until_gpus_free_up(client: TestClient, scheduling: Composed) -> None:
    first = acquire(client, LOCAL_GPUS).json()
    assert first["gpus"] == ",".join(str(i) for i in range(LOCAL_GPUS))
    thread, result = in_thread(lambda: acquire(client, 2))
    waiting = pending_local_job(client)
    time.sleep(0.3)
    assert thread.is_alive() and "response" not in result
    released = client.post(f"/api/v1/jobs/{first['job_id']}/release", json={"exit_code": 0})
    assert released.status_code == 200
    thread.join(15)
    assert not thread.is_alive()
    response = result["response"]
    assert response.status_code == 200, response.text
    assert response.json() == {"job_id": waiting["id"], "gpus": "0,1"}


def test_acquire_of_a_job_cancelled_while_waiting_is_409(
    client: TestClient, scheduling: Composed
) -> None:
    acquire(client, LOCAL_GPUS)
    thread, result = in_thread(lambda: acquire(client, 1))
    waiting = pending_local_job(client)
    assert client.delete(f"/api/v1/jobs/{waiting['id']}").status_code == 200
    thread.join(15)
    assert not thread.is_alive()
    message = f"job {waiting['id']} was cancelled before it got GPUs"
    assert_srun_error(result["response"], 409, message)


def test_acquire_jobs_respect_priorities_and_queue_order(
    client: TestClient, scheduling: Composed
) -> None:
    """An /acquire job is an ordinary job: it waits behind the running ones, in the queue."""
    acquire(client, LOCAL_GPUS)
    thread, _ = in_thread(lambda: acquire(client, 1))
    waiting = pending_local_job(client)
    job = client.get(f"/api/v1/jobs/{waiting['id']}").json()
    if job["reason"] == "Held":  # the cycle has not looked at it yet: wait until it has
        params = {"timeout": 10, "version": job["version"]}
        job = client.get(f"/api/v1/jobs/{waiting['id']}/wait", params=params).json()
    assert job["state"] == "pending" and job["reason"] == "Resources"
    assert job["queue_position"] == 1
    cancelled = client.delete(f"/api/v1/jobs/{waiting['id']}")
    assert cancelled.status_code == 200, cancelled.text
    thread.join(15)
    assert not thread.is_alive()


def wait_for_state(client: TestClient, job_id: str, state: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(f"/api/v1/jobs/{job_id}").json()["state"] == state:
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not become {state}")


def test_the_allocation_ends_when_the_pid_exits(client: TestClient, scheduling: Composed) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        response = client.post("/acquire", json={"pid": child.pid, "num_gpus": LOCAL_GPUS})
        assert response.status_code == 200, response.text
    finally:
        child.kill()
        child.wait()
    job_id = response.json()["job_id"]
    wait_for_state(client, job_id, "completed")  # srun execs: its PID ending is the end
    assert client.get("/status").json()["gpus_allocated"] == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", 'missing JSON body: send {"pid": <int>, "num_gpus": <int>}'),
        ("  ", 'missing JSON body: send {"pid": <int>, "num_gpus": <int>}'),
        ("{not json", None),
        ("[1]", "JSON payload must be an object"),
        ("{}", "missing pid"),
        ('{"num_gpus": 1}', "missing pid"),
        ('{"pid": null}', "missing pid"),
        ('{"pid": "me"}', "pid must be an integer between 1 and 2147483647"),
        ('{"pid": true}', "pid must be an integer between 1 and 2147483647"),
        ('{"pid": 0}', "pid must be an integer between 1 and 2147483647"),
        ('{"pid": -4}', "pid must be an integer between 1 and 2147483647"),
        ('{"pid": 1e30}', "pid must be an integer between 1 and 2147483647"),
        ('{"pid": PID, "num_gpus": -1}', "num_gpus must be a non-negative integer"),
        ('{"pid": PID, "num_gpus": 1.5}', "num_gpus must be a non-negative integer"),
        ('{"pid": PID, "num_gpus": "2"}', "num_gpus must be a non-negative integer"),
        ('{"pid": PID, "num_gpus": true}', "num_gpus must be a non-negative integer"),
        ('{"pid": PID, "num_gpus": null}', "num_gpus must be a non-negative integer"),
        ('{"pid": PID, "num_gpus": 9}', "requested 9 GPU(s) but only 8 available on this machine"),
        (
            '{"pid": PID, "num_gpus": 1099511627776}',
            "requested 1099511627776 GPU(s) but only 8 available on this machine",
        ),
        ('{"pid": PID, "num_gpus": 100000000000000000000}', None),
    ],
)
def test_acquire_bad_input_is_400(client: TestClient, content: str, message: str | None) -> None:
    response = client.post(
        "/acquire",
        content=content.replace("PID", str(CLIENT_PID)),
        headers={"content-type": "application/json"},
    )
    error = assert_srun_error(response, 400, message)
    assert error


def test_acquire_for_a_dead_pid_is_400(client: TestClient) -> None:
    pid = dead_pid()
    response = client.post("/acquire", json={"pid": pid, "num_gpus": 1})
    assert_srun_error(response, 400, f"no process with pid {pid} on this machine")
    assert client.get("/api/v1/jobs").json()["total"] == 0  # nothing was queued


def test_acquire_on_a_server_that_is_not_a_gpu_node(tmp_path: Path) -> None:
    config = tmp_path / "cluster.json"
    config.write_text(json.dumps({"nodes": [{"id": "far", "gpus": [{"id": "far-0"}]}]}))
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", config=config)
    composed = compose(settings, clock=FakeClock())
    composed.scheduler.start()
    try:
        with admin_client(composed) as client:
            message = "requested 1 GPU(s) but only 0 available on this machine"
            assert_srun_error(acquire(client, 1), 400, message)
            assert acquire(client, 0).json()["gpus"] == "-1"
            status = client.get("/status").json()
            assert (status["gpus_total"], status["gpus_allocated"]) == (0, [])
    finally:
        composed.scheduler.stop()
        composed.store.dispose()


def test_client_hanging_up_cancels_the_waiting_job(composed: Composed) -> None:
    """Over a real socket (uvicorn): srun killed while it waits leaves no job behind."""
    composed.scheduler.start()
    try:
        with (
            admin_client(composed) as client,
            ThreadedServer(composed.app, peer_identity=True) as url,
        ):
            assert acquire(client, LOCAL_GPUS).status_code == 200
            port = int(url.rsplit(":", 1)[1])
            payload = json.dumps({"pid": CLIENT_PID, "num_gpus": 1}).encode()
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(
                    b"POST /acquire HTTP/1.1\r\nHost: localhost\r\n"
                    + b"Content-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                waiting = pending_local_job(client)
            path = f"/api/v1/jobs/{waiting['id']}"
            wait_until(lambda: client.get(path).json()["state"] != "pending", what="the end")
            assert client.get(path).json()["state"] == "cancelled"
    finally:
        composed.scheduler.stop()


def test_wrong_methods_are_json_405(client: TestClient) -> None:
    for response in (client.get("/acquire"), client.post("/status"), client.delete("/jobs")):
        assert_srun_error(response, 405, "Method not allowed")


# ----------------------------------------------------------------------------------- status


def test_status_shape(client: TestClient, composed: Composed) -> None:
    response = client.get("/status")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys())[: len(STATUS_KEYS)] == STATUS_KEYS
    assert body["service"] == "local-gpu-scheduler"
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["uptime_s"], int) and body["uptime_s"] >= 0
    assert body["port"] == 8080
    assert (body["gpus_total"], body["gpus_allocated"]) == (LOCAL_GPUS, [])
    assert (body["jobs_running"], body["jobs_queued"], body["jobs_total"]) == (0, 0, 0)


def test_status_uptime_counts_from_the_start(client: TestClient, composed: Composed) -> None:
    composed.app.state.ctx.started_at -= 100
    assert client.get("/status").json()["uptime_s"] >= 100


def test_status_counts_this_hosts_jobs(client: TestClient, scheduling: Composed) -> None:
    acquire(client, 6)
    thread, _ = in_thread(lambda: acquire(client, 4))
    waiting = pending_local_job(client)
    client.post("/api/v1/jobs", json={"gpu_count": 1, "node_id": "node-a", "command": ["x"]})
    body = client.get("/status").json()
    assert body["gpus_allocated"] == [0, 1, 2, 3, 4, 5]
    assert (body["jobs_running"], body["jobs_queued"], body["jobs_total"]) == (1, 1, 2)
    client.delete(f"/api/v1/jobs/{waiting['id']}")
    thread.join(15)


# ------------------------------------------------------------------------------------- jobs


def test_jobs_lists_this_hosts_jobs_in_its_vocabulary(
    client: TestClient, composed: Composed
) -> None:
    def local_job(**fields: Any) -> int:
        body = {"gpu_count": 1, "node_id": LOCAL, "command": ["x"], **fields}
        response = client.post("/api/v1/jobs", json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["job_id"])

    ids = [local_job(kind="interactive", pid=CLIENT_PID) for _ in range(6)]
    composed.scheduler.run_once()
    pending = local_job(gpu_count=LOCAL_GPUS)
    client.post("/api/v1/jobs", json={"gpu_count": 1, "node_id": "node-a", "command": ["x"]})
    composed.jobs.release(ids[1], 0)
    composed.jobs.release(ids[2], 1)
    composed.jobs.cancel(ids[3])
    composed.jobs.finish(ids[4], JobState.LOST)
    composed.jobs.finish(ids[5], JobState.PREEMPTED)
    response = client.get("/jobs")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    entries = response.json()
    assert isinstance(entries, list)
    assert all(list(e.keys())[: len(JOBS_ENTRY_KEYS)] == JOBS_ENTRY_KEYS for e in entries)
    by_id = {e["id"]: e for e in entries}
    assert set(by_id) == {str(i) for i in [*ids, pending]}  # not node-a's job
    statuses = [by_id[str(i)]["status"] for i in ids]
    assert statuses == ["running", "done", "done", "cancelled", "done", "preempted"]
    assert by_id[str(pending)]["status"] == "queued"
    running = by_id[str(ids[0])]
    assert (running["num_gpus"], running["pid"], len(running["gpus"])) == (1, CLIENT_PID, 1)
    assert by_id[str(pending)]["gpus"] == [] and by_id[str(pending)]["pid"] == 0


def test_jobs_is_empty_at_first(client: TestClient) -> None:
    assert client.get("/jobs").json() == []
