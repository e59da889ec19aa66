"""Identity end to end (issue #12, ADR 0009): two real Unix users, made for this module, run
real ``procplan`` processes against a real server started as root.

The server believes the kernel, never a name: a loopback TCP client is the Unix user that owns
its socket, a Unix-socket client the one ``SO_PEERCRED`` names. A root server that is not
``--demo`` runs each batch job as its submitter's Unix account (the root agent drops
privileges before it opens anything the job names), lets only owners and admins read logs
or cancel, and lets nobody name someone else's process to ``/acquire``.

The users and their commands (``setpriv``, homes in /tmp, the search bits the interpreter's
directories may need) are ``tests/e2e/unix_users.py``'s.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import missing_dependency
from tests.e2e.unix_users import PY, User, unix_users, user_homes

from procplan.testing import AgentProcess, ServerProcess, wait_until

pytestmark = pytest.mark.slow

TOKEN = "identity-e2e-token"
NODE = socket.gethostname()  # this host: ``procplan run`` pins its jobs here
until = functools.partial(wait_until, timeout=40.0, step=0.05)  # a loaded 2-core CI machine


# ---- users ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def homes() -> Iterator[Path]:
    """A directory every user may enter (pytest's own temporary directory is root's only)."""
    with user_homes("procplan-identity-") as made:
        yield made


@pytest.fixture(scope="module")
def users(homes: Path) -> Iterator[tuple[User, User]]:
    """alice and bob (with a random suffix: runs on one machine do not collide)."""
    with unix_users(homes) as factory:
        alice, bob = factory.make("alice", "bob")
        yield alice, bob


# ---- servers ----------------------------------------------------------------------------


@dataclass
class Cluster:
    server: ServerProcess
    socket_path: Path

    @property
    def url(self) -> str:
        return str(self.server.url)

    def job(self, job_id: int) -> dict[str, Any]:
        reply = httpx.get(f"{self.url}/api/v1/jobs/{job_id}", timeout=10)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def jobs_of(self, user: str) -> list[dict[str, Any]]:
        reply = httpx.get(f"{self.url}/api/v1/jobs", params={"user": user}, timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json()["jobs"]  # type: ignore[no-any-return]

    def ended(self, job_id: int) -> dict[str, Any]:
        finished = ("completed", "failed", "cancelled", "lost")
        return until(lambda: (j := self.job(job_id))["state"] in finished and j)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, homes: Path, users: tuple[User, User]
) -> Iterator[Cluster]:
    """``procplan server`` as root (not --demo: it runs jobs as their users) on loopback TCP
    and a Unix socket, and a root ``procplan agent`` for this host on 4 fake GPUs."""
    tmp = tmp_path_factory.mktemp("identity")
    sock = homes / "procplan.sock"
    server = ServerProcess(
        ["--database", str(tmp / "identity.db"), "--unix-socket", str(sock)],
        env={"PROCPLAN_AGENT_TOKEN": TOKEN, "PROCPLAN_LOCAL_AGENT": "off"},
        log_file=tmp / "server.log",
    )
    with server, AgentProcess(server.url, TOKEN, NODE, tmp / "state", tmp / "agent.log"):
        online = f"{server.url}/api/v1/nodes/{NODE}"
        until(lambda: httpx.get(online, timeout=5).json().get("state") == "online")
        yield Cluster(server, sock)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``procplan server --demo``: jobs run as the server's own user, whoever submits."""
    tmp = tmp_path_factory.mktemp("identity-demo")
    with ServerProcess(
        ["--demo", "--database", str(tmp / "demo.db")], log_file=tmp / "server.log"
    ) as server:
        yield server


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


# ---- a: procplan run -------------------------------------------------------------------


def test_a_local_user_runs_as_themselves_without_signing_in(
    cluster: Cluster, users: tuple[User, User]
) -> None:
    alice, _ = users
    done = alice.procplan(
        cluster.url, "run", "-n", "1", "--name", "whoami-run", "--",
        "sh", "-c", "id -un; echo $CUDA_VISIBLE_DEVICES",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    name, gpus = done.stdout.split()
    assert name == alice.name
    assert gpus.isdigit()
    (job,) = [j for j in cluster.jobs_of(alice.name) if j["name"] == "whoami-run"]
    assert cluster.job(job["id"])["user"] == alice.name
    assert cluster.ended(job["id"])["state"] == "completed"


# ---- b, c: batch jobs ------------------------------------------------------------------


def submit(cluster: Cluster, user: User, *args: str) -> int:
    done = user.procplan(cluster.url, "submit", "--parsable", "--workdir", str(user.home), *args)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def test_a_batch_job_runs_as_its_user_and_only_they_or_an_admin_touch_it(
    cluster: Cluster, users: tuple[User, User]
) -> None:
    alice, bob = users
    out = alice.home / "whoami.out"
    first = submit(cluster, alice, "-n", "1", "--output", str(out), "--", "id", "-un")
    assert cluster.ended(first)["state"] == "completed"
    assert out.read_text() == f"{alice.name}\n"
    assert out.stat().st_uid == alice.uid  # opened as alice, not by the root agent
    logs = until(lambda: (r := alice.procplan(cluster.url, "logs", str(first))).stdout and r)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == f"{alice.name}\n"

    refused = bob.procplan(cluster.url, "logs", str(first))
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert f"for its owner '{alice.name}' and admins only" in refused.stderr
    status, _ = bob.request("GET", f"{cluster.url}/api/v1/jobs/{first}/logs")
    assert status == 403

    second = submit(cluster, alice, "-n", "1", "--", "sleep", "300")
    running = until(lambda: (j := cluster.job(second))["state"] == "running" and j["pid"] and j)
    pid = int(running["pid"])
    assert Path(f"/proc/{pid}").stat().st_uid == alice.uid
    denied = bob.procplan(cluster.url, "cancel", str(second))
    assert denied.returncode != 0
    assert f"belongs to '{alice.name}'" in denied.stderr
    assert cluster.job(second)["state"] == "running" and alive(pid)

    by_admin = subprocess.run(  # this process is root: an admin of the server, by its uid
        [PY, "-m", "procplan.cli.main", "cancel", str(second), "--url", cluster.url],
        env={k: v for k, v in os.environ.items() if k not in ("PROCPLAN_TOKEN", "PROCPLAN_AS")},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert by_admin.returncode == 0, by_admin.stderr
    assert cluster.ended(second)["state"] == "cancelled"
    until(lambda: not alive(pid))


def test_a_log_file_the_user_may_not_write_fails_the_job_and_creates_nothing(
    cluster: Cluster, users: tuple[User, User], homes: Path
) -> None:
    alice, _ = users
    private = homes / "root-only"
    private.mkdir(mode=0o700)
    target = private / "out.txt"
    job_id = submit(cluster, alice, "-n", "1", "--output", str(target), "--", "echo", "hi")
    ended = cluster.ended(job_id)
    assert ended["state"] == "failed"
    assert str(target) in ended["message"] and alice.name in ended["message"]
    assert "Permission denied" in ended["message"]
    assert not target.exists()


# ---- d: /acquire -----------------------------------------------------------------------


def test_nobody_names_another_users_process(cluster: Cluster, users: tuple[User, User]) -> None:
    alice, bob = users
    theirs = subprocess.Popen(alice.argv("sleep", "300"), env=alice.env(), cwd=alice.home)
    try:
        until(lambda: Path(f"/proc/{theirs.pid}").stat().st_uid == alice.uid)
        for pid in (theirs.pid, cluster.server.pid):
            status, answer = bob.request(
                "POST", f"{cluster.url}/acquire", {"pid": pid, "num_gpus": 1}
            )
            assert status == 403, answer
            assert f"process {pid} is not yours" in json.dumps(answer)
        assert cluster.server.proc is not None and cluster.server.proc.poll() is None
        assert httpx.get(f"{cluster.url}/health", timeout=10).status_code == 200
        assert theirs.poll() is None and alive(theirs.pid)
        assert not [j for j in cluster.jobs_of(bob.name) if str(j["name"]).startswith("srun-")]
    finally:
        theirs.kill()
        theirs.wait(10)


# ---- e: the Go scheduler's demo flow ---------------------------------------------------


def test_the_go_demo_flow_needs_no_identity_from_the_servers_host(demo: ServerProcess) -> None:
    """Plain JSON posts, no token, no header: the server's host knows who we are (here the
    server's own user, an admin) and the jobs run."""
    ids = []
    for i in range(3):
        body = {"tenant_id": "default", "name": f"go-job-{i}", "priority": 100 * (i + 1),
                "gpu_count": 1, "gpu_memory_mb": 16000, "script": f"echo go-job-{i}"}  # fmt: skip
        reply = httpx.post(f"{demo.url}/api/v1/jobs", json=body, timeout=10)
        assert reply.status_code == 201, reply.text
        assert reply.json()["status"] == "submitted"
        ids.append(reply.json()["job_id"])

    def state(job_id: int) -> str:
        return str(httpx.get(f"{demo.url}/api/v1/jobs/{job_id}", timeout=10).json()["state"])

    for job_id in ids:
        until(lambda job_id=job_id: state(job_id) in ("completed", "failed", "cancelled"))
        assert state(job_id) == "completed"


def test_a_root_demo_server_takes_batch_jobs_from_its_admins_only(
    demo: ServerProcess, users: tuple[User, User]
) -> None:
    """--demo does not switch users, so a root demo server's jobs would run as root."""
    _, bob = users
    body = {"command": ["id", "-un"], "gpu_count": 0}
    status, answer = bob.request("POST", f"{demo.url}/api/v1/jobs", body)
    assert status == 400, answer
    assert answer["code"] == "root_job"


# ---- f: the Unix socket ----------------------------------------------------------------


def test_the_unix_socket_knows_who_connects(cluster: Cluster, users: tuple[User, User]) -> None:
    if shutil.which("curl") is None:
        missing_dependency("curl is not installed")
    _, bob = users
    done = bob.run("curl", "-sS", "--unix-socket", str(cluster.socket_path),
                   "http://localhost/api/v1/me")  # fmt: skip
    assert done.returncode == 0, done.stderr
    me = json.loads(done.stdout)
    assert (me["user"], me["via"], me["role"]) == (bob.name, "peer", "user")
    assert me["unix_user"] == bob.name
