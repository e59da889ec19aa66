"""The job queue end to end: a real ``procplan server --demo`` and real client processes.

The demo server simulates this host with 8 GPUs (node id = host name), so ``procplan run``
pins its jobs here and the server can watch client PIDs. Each test gets its own server: they
fill all eight GPUs on purpose.

The users (ada, bob, carol) are ProcPlan users proven by API tokens that the test, the
server's admin (its own Unix user, by peer identity), makes for them; their Unix account is
the tests' own, so that each may name the PIDs of the clients it starts (issue #12).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from procplan.testing import ServerProcess, wait_until

HERE = Path(__file__).resolve().parent
PY = sys.executable
PRINT_GPUS = "import os; print('GPUS=' + os.environ['CUDA_VISIBLE_DEVICES'])"
OWN_ACCOUNT = pwd.getpwuid(os.geteuid()).pw_name

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(["--demo", "--database", str(tmp_path / "jobs.db")]) as proc:
        yield proc


def token_of(url: str, user: str) -> str:
    """A new API token of ``user`` (added, or re-added while it has no password or role, with
    this process's Unix account), made by the admin this process is to the server."""
    added = httpx.post(f"{url}/api/v1/users", json={"name": user, "unix_user": OWN_ACCOUNT})
    assert added.status_code == 201, added.text
    made = httpx.post(f"{url}/api/v1/tokens", json={"user": user, "name": "e2e"})
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def as_user(url: str, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PROCPLAN_AS", "PROCPLAN_URL")}
    return {**env, "PROCPLAN_TOKEN": token_of(url, user)}


def procplan_run(url: str, user: str, *args: str, **popen: object) -> subprocess.Popen[str]:
    cmd = [PY, "-m", "procplan.cli.main", "run", "--url", url, *args]
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        cmd,
        env=as_user(url, user),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def api(
    url: str, method: str, path: str, user: str | None = None, **kwargs: object
) -> httpx.Response:
    """A request of this process (the server's admin), acting for ``user`` when given."""
    headers = {"X-ProcPlan-User": user} if user else {}
    return httpx.request(method, url + path, headers=headers, **kwargs)  # type: ignore[arg-type]


def jobs_of(url: str, user: str) -> list[dict[str, object]]:
    reply = api(url, "GET", f"/api/v1/jobs?user={user}&limit=100")
    assert reply.status_code == 200, reply.text
    return reply.json()["jobs"]  # type: ignore[no-any-return]


def until(predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """For ``assert until(...)``: True once ``predicate()`` holds, False after ``timeout``."""
    try:
        wait_until(predicate, timeout, step=0.05)
    except AssertionError:
        return False
    return True


def test_run_sets_cuda_visible_devices_and_passes_the_exit_code(server: ServerProcess) -> None:
    code = f"{PRINT_GPUS}; raise SystemExit(3)"
    proc = procplan_run(server.url, "ada", "-n", "2", "--time", "10m", "--", PY, "-c", code)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert "GPUS=0,1" in out
    (job,) = jobs_of(server.url, "ada")
    assert job["state"] == "failed"
    assert job["exit_code"] == 3
    status = api(server.url, "GET", "/api/v1/cluster/status").json()
    assert status["running_jobs"] == 0


def test_kill_9_of_the_client_frees_the_gpus_and_leaves_no_orphan(
    server: ServerProcess, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    child = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    )
    client = procplan_run(server.url, "ada", "-n", "8", "--", PY, "-c", child)
    assert until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=30)
    child_pid = int(pid_file.read_text())

    client.send_signal(signal.SIGKILL)
    client.wait(timeout=10)
    began = time.monotonic()
    assert until(lambda: not _alive(child_pid), timeout=5), "the command outlived its client"
    assert until(lambda: jobs_of(server.url, "ada")[0]["state"] == "lost", timeout=30)
    freed_after = time.monotonic() - began
    assert freed_after < 30  # the server host watches the client's PID: ~1-2 s, not the TTL

    again = procplan_run(server.url, "bob", "-n", "8", "--time", "5m", "--", PY, "-c", PRINT_GPUS)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "GPUS=0,1,2,3,4,5,6,7" in out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_users_compete_and_the_second_waits_for_the_first(server: ServerProcess) -> None:
    first = procplan_run(
        server.url, "ada", "-n", "8", "--time", "5m", "--", PY, "-c", "import time; time.sleep(2)"
    )
    assert until(lambda: any(j["state"] == "running" for j in jobs_of(server.url, "ada")), 30)
    second = procplan_run(server.url, "bob", "-n", "1", "--time", "5m", "--", PY, "-c", PRINT_GPUS)
    assert until(lambda: bool(jobs_of(server.url, "bob")), 30)
    waiting = jobs_of(server.url, "bob")[0]
    assert waiting["state"] == "pending"
    assert waiting["reason"] == "Resources"
    assert waiting["estimated_start"] is not None

    assert first.wait(timeout=60) == 0
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "GPUS=" in out
    ada_end = jobs_of(server.url, "ada")[0]["completed_at"]
    bob_start = jobs_of(server.url, "bob")[0]["started_at"]
    assert bob_start >= ada_end  # type: ignore[operator]


def test_a_booking_keeps_other_users_jobs_off_its_gpus(server: ServerProcess) -> None:
    node = api(server.url, "GET", "/api/v1/nodes").json()["nodes"][-1]["id"]
    booked = api(
        server.url,
        "POST",
        "/api/v1/bookings",
        user="carol",
        json={"node_id": node, "gpu_count": 8, "start": _now_iso(), "duration_minutes": 60},
    )
    assert booked.status_code == 201, booked.text

    bob = procplan_run(server.url, "bob", "-n", "1", "--time", "10m", "--", PY, "-c", PRINT_GPUS)
    try:
        assert until(lambda: bool(jobs_of(server.url, "bob")), 30)
        assert until(lambda: jobs_of(server.url, "bob")[0]["reason"] == "Booked", 10)
        carol = procplan_run(
            server.url, "carol", "-n", "1", "--time", "10m", "--", PY, "-c", PRINT_GPUS
        )
        out, err = carol.communicate(timeout=60)
        assert carol.returncode == 0, err
        assert "GPUS=" in out
        assert jobs_of(server.url, "bob")[0]["state"] == "pending"
    finally:
        bob.send_signal(signal.SIGINT)  # Ctrl-C while waiting withdraws the request
        bob.communicate(timeout=30)
    assert bob.returncode == 130
    assert jobs_of(server.url, "bob")[0]["state"] == "cancelled"


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:00+00:00", time.gmtime())


def test_an_srun_style_client_acquires_then_execs(server: ServerProcess) -> None:
    if shutil.which("curl") is None or shutil.which("jq") is None:
        if os.environ.get("PROCPLAN_REQUIRE_ALL") == "1":
            pytest.fail("curl and jq are needed for the srun-style client")
        pytest.skip("curl and jq are needed for the srun-style client")
    env = {**os.environ, "GPUSCHED_URL": server.url}
    done = subprocess.run(
        ["bash", str(HERE / "srun_like.sh"), "-n", "2", PY, "-c", PRINT_GPUS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "GPUS=0,1" in done.stdout

    def finished() -> bool:
        listed = httpx.get(server.url + "/jobs").json()
        return bool(listed) and listed[0]["status"] == "done"

    assert until(finished, timeout=10), httpx.get(server.url + "/jobs").text
    status = httpx.get(server.url + "/status").json()
    assert status["service"] == "local-gpu-scheduler"
    assert status["gpus_total"] == 8
    assert status["gpus_allocated"] == []
