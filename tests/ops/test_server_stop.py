"""A clean stop (issue #16 item 8): SIGTERM ends ``procplan server --demo`` within 2 s with
nothing alarming in its log, its long polls answered (``/wait`` with its normal answer, a
blocked ``/acquire`` with a 503), and the jobs its embedded (demo) agents started are gone with
it. With ``--workers 2`` the same, within 3 s. A real ``procplan agent`` leaves its jobs
running (tests/e2e/test_agent_e2e.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from procplan.testing import ServerProcess, wait_until

PY = sys.executable
STOP_WITHIN_S = 2.0
ALARMING = ("Traceback", "ERROR", "timeout graceful shutdown exceeded", "Exception in ASGI")

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (not reaped yet by its new parent) is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def api(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request of this process: the server's admin, by the loopback connection's owner."""
    return httpx.request(method, url + path, timeout=30, **kwargs)


def in_background(outcomes: dict[str, str], name: str, method: str, url: str, **kw: Any) -> None:
    """Send a long poll on a thread; ``outcomes[name]`` says how it ended."""

    def send() -> None:
        try:
            reply = httpx.request(method, url, timeout=30, **kw)
            outcomes[name] = f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            outcomes[name] = f"closed ({type(exc).__name__})"

    threading.Thread(target=send, daemon=True).start()


def demo_server(tmp_path: Path, *args: str) -> ServerProcess:
    return ServerProcess(
        ["--demo", "--database", str(tmp_path / "stop.db"), *args],
        env={"PROCPLAN_LOG_LEVEL": "info", "PROCPLAN_LOCAL_NODE": "stop-local"},
        log_file=tmp_path / "server.log",
    ).start()


def stop(server: ServerProcess, log: Path, within_s: float) -> str:
    """SIGTERM the server; checks that it exits with 0 within ``within_s`` and logs nothing
    alarming. Returns what it logged while stopping."""
    assert server.proc is not None
    before = len(log.read_bytes())
    started = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not stop within 10 s:\n{log.read_text()[-3000:]}")
    took = time.monotonic() - started
    print(f"server stopped {took:.2f} s after SIGTERM (exit code {code})")
    text = log.read_text(errors="replace")
    assert took < within_s, f"stop took {took:.2f} s:\n{text[-3000:]}"
    assert code == 0, text[-3000:]
    for word in ALARMING:
        assert word not in text, f"{word!r} in the server's log:\n{text[-3000:]}"
    return log.read_bytes()[before:].decode(errors="replace")


def sleeper() -> subprocess.Popen[bytes]:
    """A process of ours for ``/acquire`` to name (the server watches it)."""
    return subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])


def test_sigterm_stops_the_demo_server_within_2_s_and_its_jobs_with_it(tmp_path: Path) -> None:
    server = demo_server(tmp_path)
    holder = sleeper()
    try:
        url = server.url
        # A batch job that fills this host's 8 demo GPUs, run by its embedded agent.
        body = {"command": ["sleep", "600"], "workdir": str(tmp_path), "gpu_count": 8,
                "node_id": "stop-local"}  # fmt: skip
        reply = api(url, "POST", "/api/v1/jobs", json=body)
        assert reply.status_code == 201, reply.text
        job_id = int(reply.json()["job_id"])
        wait_until(lambda: api(url, "GET", f"/api/v1/jobs/{job_id}").json().get("pid"), 20, 0.05)
        job = api(url, "GET", f"/api/v1/jobs/{job_id}").json()
        pid = int(job["pid"])
        assert alive(pid)

        # Long polls in flight: a job wait, and an srun-style /acquire blocked on the full host
        # (and the embedded agents' own polls for their jobs).
        outcomes: dict[str, str] = {}
        in_background(outcomes, "wait", "GET", f"{url}/api/v1/jobs/{job_id}/wait",
                      params={"version": job["version"], "timeout": 25})  # fmt: skip
        in_background(outcomes, "acquire", "POST", f"{url}/acquire",
                      json={"num_gpus": 1, "pid": holder.pid})  # fmt: skip
        time.sleep(1.0)
        assert not outcomes, outcomes

        stopping = stop(server, tmp_path / "server.log", STOP_WITHIN_S)
        assert "WARNING" not in stopping, stopping  # nothing was cut short by the stop
        wait_until(lambda: len(outcomes) == 2, 5, 0.05)
        print("long polls:", outcomes)
        assert outcomes == {"wait": "HTTP 200", "acquire": "HTTP 503"}
        wait_until(lambda: not alive(pid), 3, 0.05)
    finally:
        holder.kill()
        holder.wait()
        server.stop()


def test_sigterm_stops_a_server_with_workers_and_answers_its_long_polls(tmp_path: Path) -> None:
    """``--workers 2``: each worker wakes its own long polls; uvicorn's supervisor looks at
    signals every 0.5 s before it stops them, hence a second more."""
    server = demo_server(tmp_path, "--workers", "2")
    first, second = sleeper(), sleeper()
    try:
        url = server.url
        granted = api(url, "POST", "/acquire", json={"num_gpus": 8, "pid": first.pid})
        assert granted.status_code == 200, granted.text
        outcomes: dict[str, str] = {}
        in_background(outcomes, "acquire", "POST", f"{url}/acquire",
                      json={"num_gpus": 1, "pid": second.pid})  # fmt: skip
        time.sleep(1.0)
        assert not outcomes, outcomes
        stop(server, tmp_path / "server.log", STOP_WITHIN_S + 1.0)
        wait_until(lambda: len(outcomes) == 1, 5, 0.05)
        assert outcomes == {"acquire": "HTTP 503"}
    finally:
        for holder in (first, second):
            holder.kill()
            holder.wait()
        server.stop()
