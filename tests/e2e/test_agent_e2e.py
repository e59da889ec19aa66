"""The node agent end to end: a real server, a real ``procplan agent`` process on fake GPUs,
real batch jobs (ADR 0006).

The agent reports every 0.5 s, so the server calls its node offline after 1.5 s of silence.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from procplan.testing import AgentProcess, ServerProcess, wait_until

pytestmark = pytest.mark.slow

PY = sys.executable
until = functools.partial(wait_until, timeout=40.0, step=0.1)  # a loaded 2-core CI machine
TOKEN = "e2e-token"
NODE = "e2e-node"
# The tests submit as themselves (the server's own Unix user: its admin, by peer identity), and
# a root server and root agent run such jobs as root only when told they may (ADR 0009).
ROOT_JOBS = ["--allow-root-jobs"] if os.geteuid() == 0 else []


def server_process(db: Path) -> ServerProcess:
    return ServerProcess(
        ["--database", str(db), *ROOT_JOBS],
        env={"PROCPLAN_AGENT_TOKEN": TOKEN, "PROCPLAN_LOCAL_AGENT": "off"},
    )


def agent_process(url: str, state_dir: Path, log: Path) -> AgentProcess:
    """``procplan agent`` for ``NODE`` on 4 fake GPUs (output to ``log``, read on failure)."""
    return AgentProcess(url, TOKEN, NODE, state_dir, log, extra=tuple(ROOT_JOBS))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[ServerProcess, AgentProcess]]:
    server = server_process(tmp_path / "agent.db").start()
    agent = agent_process(server.url, tmp_path / "state", tmp_path / "agent.log").start()
    try:
        until(lambda: node(server.url)["state"] == "online")
        yield server, agent
    finally:
        agent.stop()
        server.stop()


def api(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request from this process: the server knows its user from the loopback connection."""
    return httpx.request(method, url + path, timeout=10, **kwargs)


def node(url: str) -> dict[str, Any]:
    reply = api(url, "GET", f"/api/v1/nodes/{NODE}")
    return reply.json() if reply.status_code == 200 else {"state": "missing"}


def submit(url: str, workdir: Path, *command: str, **fields: Any) -> int:
    body = {"command": list(command), "workdir": str(workdir), "node_id": NODE, **fields}
    reply = api(url, "POST", "/api/v1/jobs", json=body)
    assert reply.status_code == 201, reply.text
    return int(reply.json()["job_id"])


def job(url: str, job_id: int) -> dict[str, Any]:
    reply = api(url, "GET", f"/api/v1/jobs/{job_id}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


SPAWN_CHILD = (
    "import os, subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
    "open('child.pid', 'w').write(str(child.pid)); print('started', flush=True); "
    "time.sleep(300)"
)


def start_spawning_job(url: str, workdir: Path) -> tuple[int, int, int]:
    """Submit ``SPAWN_CHILD``; once it runs: its id, the leader's PID and the child's PID."""
    job_id = submit(url, workdir, PY, "-c", SPAWN_CHILD)
    until(lambda: (workdir / "child.pid").exists() and job(url, job_id)["pid"])
    return job_id, int(job(url, job_id)["pid"]), int((workdir / "child.pid").read_text())


def test_a_batch_job_runs_logs_and_reports_its_exit_code(
    cluster: tuple[ServerProcess, AgentProcess], tmp_path: Path
) -> None:
    server, _ = cluster
    script = "import os, sys; print('GPUS=' + os.environ['CUDA_VISIBLE_DEVICES']); sys.exit(3)"
    job_id = submit(server.url, tmp_path, PY, "-c", script, gpu_count=2)
    ended = until(lambda: (j := job(server.url, job_id))["state"] == "failed" and j)
    assert (ended["exit_code"], ended["message"]) == (3, "exited with code 3")
    assert (tmp_path / f"procplan-{job_id}.out").read_text() == "GPUS=0,1\n"
    logs = until(lambda: api(server.url, "GET", f"/api/v1/jobs/{job_id}/logs").content)
    assert logs == b"GPUS=0,1\n"
    cli = subprocess.run(
        [PY, "-m", "procplan.cli.main", "logs", str(job_id), "--url", server.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == "GPUS=0,1\n"


def test_cancel_kills_the_whole_process_group(
    cluster: tuple[ServerProcess, AgentProcess], tmp_path: Path
) -> None:
    server, _ = cluster
    job_id, leader, child = start_spawning_job(server.url, tmp_path)
    assert alive(child) and alive(leader)
    assert api(server.url, "DELETE", f"/api/v1/jobs/{job_id}").status_code == 200
    until(lambda: not alive(child) and not alive(leader), timeout=40)
    assert job(server.url, job_id)["state"] == "cancelled"


def test_a_killed_agent_loses_its_jobs_and_cleans_up_when_back(
    cluster: tuple[ServerProcess, AgentProcess], tmp_path: Path
) -> None:
    server, agent = cluster
    job_id, first_leader, _ = start_spawning_job(server.url, tmp_path)
    (tmp_path / "child.pid").unlink()
    agent.kill()
    until(lambda: node(server.url)["state"] == "offline")
    requeued = until(lambda: (j := job(server.url, job_id))["requeues"] == 1 and j)
    assert requeued["state"] == "pending"
    assert alive(first_leader)  # jobs do not die with their agent...
    agent.start()
    until(lambda: not alive(first_leader), timeout=40)  # ...the agent back kills the old run
    rerun = until(lambda: (j := job(server.url, job_id))["state"] == "running" and j["pid"] and j)
    assert int(rerun["pid"]) != first_leader
    api(server.url, "DELETE", f"/api/v1/jobs/{job_id}")


def test_jobs_survive_a_server_restart(
    cluster: tuple[ServerProcess, AgentProcess], tmp_path: Path
) -> None:
    server, _ = cluster
    job_id, leader, _ = start_spawning_job(server.url, tmp_path)
    server.stop()
    time.sleep(2.0)  # longer than the agent's down-after: the server is away, not the node
    server.start()
    until(lambda: node(server.url)["state"] == "online")
    time.sleep(2.0)
    assert alive(leader)
    assert job(server.url, job_id)["state"] == "running"
    assert api(server.url, "DELETE", f"/api/v1/jobs/{job_id}").status_code == 200
    until(lambda: not alive(leader), timeout=40)


def test_an_agent_with_a_wrong_token_exits_with_an_error(tmp_path: Path) -> None:
    with server_process(tmp_path / "t.db") as server:
        args = [PY, "-m", "procplan.cli.main", "agent", "--server", server.url, "--token",
                "bad", "--node-id", NODE, "--fake-gpus", "1", "--state-dir",
                str(tmp_path / "s")]  # fmt: skip
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "agent token missing or wrong" in result.stdout + result.stderr


def test_signal_names_are_reported(
    cluster: tuple[ServerProcess, AgentProcess], tmp_path: Path
) -> None:
    server, _ = cluster
    script = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    job_id = submit(server.url, tmp_path, PY, "-c", script)
    ended = until(lambda: (j := job(server.url, job_id))["state"] == "failed" and j)
    assert ended["message"] == "killed by SIGKILL"
    assert signal.SIGKILL.name == "SIGKILL"


def test_a_cpu_only_job_runs_on_a_demo_node_with_no_gpu_visible(tmp_path: Path) -> None:
    """``gpu_count: 0`` is a real CPU-only job: the planner puts it on a node whose
    (embedded, fake-GPU) agent runs it with ``CUDA_VISIBLE_DEVICES=-1``; it completes and its
    tenant's job count goes back to 0."""
    with ServerProcess(["--demo", "--database", str(tmp_path / "cpu.db")]) as server:
        command = ["sh", "-c", "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"]
        body = {"command": command, "gpu_count": 0, "workdir": str(tmp_path)}
        reply = api(server.url, "POST", "/api/v1/jobs", json=body)
        assert reply.status_code == 201, reply.text
        job_id = int(reply.json()["job_id"])
        ended = until(lambda: (j := job(server.url, job_id))["state"] == "completed" and j)
        assert ended["exit_code"] == 0 and len(ended["node_ids"]) == 1
        assert not ended["allocated_gpus"]
        logs = until(lambda: api(server.url, "GET", f"/api/v1/jobs/{job_id}/logs").content)
        assert logs == b"CUDA_VISIBLE_DEVICES=-1\n"
        tenant = api(server.url, "GET", f"/api/v1/tenants/{ended['tenant_id']}").json()
        assert tenant["current_jobs"] == 0


def test_a_server_without_gpus_says_so_and_serves(tmp_path: Path) -> None:
    """No config, no --demo, no NVIDIA GPU here: an empty cluster that agents can join."""
    server = ServerProcess(["--database", str(tmp_path / "bare.db")])
    with server:
        assert api(server.url, "GET", "/api/v1/nodes").json()["nodes"] == []
    log = server._stderr()
    if "GPU(s) through" in log:  # pragma: no cover - a machine with GPUs
        pytest.skip("this machine has NVIDIA GPUs")
    assert "no NVIDIA GPUs found on this machine" in log
    assert "procplan server --demo" in log
