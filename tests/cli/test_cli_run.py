"""``procplan run`` against a canned server, with real child commands.

In-process runs (``CliRunner``) check the requests, the child's environment, the exit code and
preemption; subprocess runs check what only a separate process shows: signals sent to
``procplan`` while it waits (the job is withdrawn) and while it runs (forwarded to the child).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

import procplan
from procplan.cli import run, supervise
from procplan.cli.main import app
from procplan.client import Job, ProcPlanClient, parse_job
from procplan.client.answers import parse_lease

SUBMITTED_AT = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
JOBS = "/api/v1/jobs"
WAIT = "/api/v1/jobs/42/wait"
BEAT = "/api/v1/jobs/42/heartbeat"
RELEASE = "/api/v1/jobs/42/release"
CANCEL = ("DELETE", "/api/v1/jobs/42")


def pending(**fields: Any) -> dict[str, Any]:
    """A pending interactive job whose lease TTL reads as 1 s, so heartbeats come every 1/3 s."""
    job = {
        "id": "42",
        "kind": "interactive",
        "state": "pending",
        "gpu_count": 2,
        "submitted_at": SUBMITTED_AT.isoformat(),
        "lease_expires_at": (SUBMITTED_AT + timedelta(seconds=1)).isoformat(),
        "reason": "Resources",
        "reason_text": "waiting for GPUs to free up",
        "queue_position": 2,
        "estimated_start": None,
        "version": 7,
    }
    return {**job, **fields}


def running(**fields: Any) -> dict[str, Any]:
    placed = {
        "state": "running",
        "node_ids": ["node-a"],
        "allocated_gpus": ["node-a-gpu1", "node-a-gpu3"],
        "gpu_indices": [1, 3],
        "reason": None,
        "reason_text": None,
        "queue_position": 0,
        "version": 9,
    }
    return pending(**{**placed, **fields})


BEAT_OK = {"state": "running", "lease_expires_at": None, "preempt_at": None, "version": 9}


def serve_job(fake_server, waits: list[dict[str, Any]], beat: dict[str, Any] | None = None):
    """Canned routes for one ``procplan run``: submit → pending, then ``waits`` in turn."""
    fake_server.add("GET", "/api/v1/nodes", 200, {"nodes": [{"id": "elsewhere"}]})
    fake_server.add("POST", JOBS, 201, {"job_id": "42", "status": "submitted", "job": pending()})
    fake_server.add_sequence("GET", WAIT, [(200, job) for job in waits])
    fake_server.add("POST", BEAT, 200, beat or BEAT_OK)
    fake_server.add("POST", RELEASE, 200, running(state="completed"))
    fake_server.add(*CANCEL, 200, {"message": "Job cancelled successfully"})


@pytest.fixture
def cli(fake_server):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["run", *args], env={"PROCPLAN_URL": fake_server.url})

    return invoke


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


ENV_DUMP = (
    "import json, os, sys\n"
    "keys = ['CUDA_VISIBLE_DEVICES', 'CUDA_DEVICE_ORDER', 'PROCPLAN_JOB_ID', 'PROCPLAN_GPUS',"
    " 'PROCPLAN_NODES']\n"
    "open(sys.argv[1], 'w').write(json.dumps({k: os.environ.get(k) for k in keys}))\n"
    "sys.exit(3)\n"
)


# -- end to end, in process ------------------------------------------------------------------


def test_run_waits_runs_and_releases_with_the_exit_code(cli, fake_server, tmp_path):
    serve_job(fake_server, [pending(version=8, queue_position=1), running()])
    out = tmp_path / "env.json"
    result = cli("-n", "2", "--time", "2h", "--priority", "high", *python(ENV_DUMP, str(out)))
    assert result.exit_code == 3, result.output
    assert json.loads(out.read_text()) == {
        "CUDA_VISIBLE_DEVICES": "1,3",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "PROCPLAN_JOB_ID": "42",
        "PROCPLAN_GPUS": "node-a-gpu1,node-a-gpu3",
        "PROCPLAN_NODES": "node-a",
    }
    body = fake_server.calls("POST", JOBS)[0].json()
    assert body == {
        "kind": "interactive",
        "name": Path(sys.executable).name,
        "command": python(ENV_DUMP, str(out)),
        "gpu_count": 2,
        "nodes": 1,
        "time_limit_s": 7200,
        "priority": 500,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "workdir": os.getcwd(),
    }
    waits = [r.query for r in fake_server.calls("GET", WAIT)]
    assert waits == [
        {"timeout": ["25.0"], "version": ["7"]},
        {"timeout": ["25.0"], "version": ["8"]},
    ]
    assert [r.json() for r in fake_server.calls("POST", RELEASE)] == [{"exit_code": 3}]
    assert fake_server.calls(*CANCEL) == []
    assert "is not a node of the cluster" in result.stderr
    assert "job 42 pending · position 2 · waiting for GPUs to free up" in result.stderr
    assert "job 42 running on node-a (GPUs 1,3)" in result.stderr


def test_run_pins_this_host_when_it_is_a_node(cli, fake_server):
    serve_job(fake_server, [running()])
    fake_server.add("GET", "/api/v1/nodes", 200, {"nodes": [{"id": socket.gethostname()}]})
    result = cli("--", "true")
    assert result.exit_code == 0, result.output
    assert fake_server.calls("POST", JOBS)[0].json()["node_id"] == socket.gethostname()
    assert "not a node" not in result.stderr
    assert [r.json() for r in fake_server.calls("POST", RELEASE)] == [{"exit_code": 0}]


def test_run_with_node_or_several_nodes_does_not_look_up_nodes(cli, fake_server):
    serve_job(fake_server, [running()])
    assert cli("--node", "node-b", "true").exit_code == 0
    assert cli("--nodes", "2", "-n", "2", "true").exit_code == 0
    bodies = [r.json() for r in fake_server.calls("POST", JOBS)]
    assert bodies[0]["node_id"] == "node-b"
    assert "node_id" not in bodies[1]
    assert fake_server.calls("GET", "/api/v1/nodes") == []


def test_a_child_killed_by_a_signal_exits_like_a_shell(cli, fake_server):
    serve_job(fake_server, [running()])
    result = cli(*python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    assert result.exit_code == 137
    assert [r.json() for r in fake_server.calls("POST", RELEASE)] == [{"exit_code": 137}]


def test_a_missing_command_exits_127_and_releases(cli, fake_server):
    serve_job(fake_server, [running()])
    result = cli("--", "procplan-no-such-command-xyz")
    assert result.exit_code == 127
    assert "cannot run procplan-no-such-command-xyz" in result.stderr
    assert [r.json() for r in fake_server.calls("POST", RELEASE)] == [{"exit_code": 127}]


def test_preemption_seen_in_a_heartbeat_terminates_the_child(cli, fake_server):
    beat = {**BEAT_OK, "preempt_at": "2026-11-24T12:10:00+00:00"}
    serve_job(fake_server, [running()], beat=beat)
    started = time.monotonic()
    result = cli(*python("import time; time.sleep(30)"))
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert time.monotonic() - started < 15
    assert "the job is preempted" in result.stderr
    assert [r.json() for r in fake_server.calls("POST", RELEASE)] == [{"exit_code": 143}]


def test_a_job_the_server_forgot_stops_the_child(cli, fake_server):
    serve_job(fake_server, [running()])
    fake_server.add("POST", BEAT, 409, {"error": "job 42 is lost", "status": 409})
    result = cli(*python("import time; time.sleep(30)"))
    assert result.exit_code == 143
    assert "the server no longer runs job 42 (job 42 is lost)" in result.stderr


def test_a_job_that_ends_while_waiting_exits_1(cli, fake_server):
    serve_job(fake_server, [pending(state="cancelled", message="lease lapsed", version=8)])
    result = cli("true")
    assert result.exit_code == 1
    assert result.stderr.endswith("procplan: job 42 cancelled: lease lapsed\n")
    assert fake_server.calls("POST", RELEASE) == []


def test_refused_submission_exits_1(cli, fake_server):
    fake_server.add("POST", JOBS, 400, {"error": "no node has 99 GPUs", "status": 400})
    result = cli("--node", "node-a", "-n", "99", "true")
    assert (result.exit_code, result.stderr) == (1, "error: no node has 99 GPUs\n")


def test_unreachable_server_exits_2(fake_server, dead_url):
    result = CliRunner().invoke(app, ["run", "--url", dead_url, "true"])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1


# -- signals, in a separate process ----------------------------------------------------------


def start_run(url: str, command: list[str]) -> subprocess.Popen[str]:
    """``procplan run`` in its own session (no terminal: signals come from us only)."""
    env = {**os.environ, "PYTHONPATH": str(Path(procplan.__file__).parents[1])}
    return subprocess.Popen(
        [sys.executable, "-m", "procplan.cli.main", "run", "--url", url, "--node", "n", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_waiting_withdraws_the_job(fake_server, signum):
    serve_job(fake_server, [pending()])
    proc = start_run(fake_server.url, ["true"])
    try:
        wait_for(lambda: fake_server.calls("GET", WAIT))
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, err
    assert len(fake_server.calls(*CANCEL)) == 1
    assert "withdrew job 42" in err
    assert fake_server.calls("POST", RELEASE) == []


class LockedPollJobs:
    """A client's ``jobs`` whose first long poll takes a lock and gets the signal before it
    gives the lock back, without ``try``/``finally``: the shape of httpcore's pool, which a
    signal handler that raises there leaves locked. The withdrawal needs the same lock, so a
    handler that raises inside a poll shows up as a withdrawal that cannot proceed."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.lock = threading.Lock()
        self.polls = 0
        self.cancelled: list[str] = []
        self.finished = threading.Event()  # later polls are held open until the test ends

    def submit(self, body: dict[str, Any]) -> SimpleNamespace:
        return SimpleNamespace(job=parse_job(pending()))

    def wait(self, ident: str, version: int | None, timeout: float) -> Job:
        self.polls += 1
        if self.polls > 1:
            self.finished.wait()
            return parse_job(pending())
        self.lock.acquire()
        os.kill(os.getpid(), self.signum)
        self.lock.release()
        return parse_job(pending())

    def cancel(self, ident: str) -> None:
        assert self.lock.acquire(timeout=10), "the long poll's lock was never given back"
        self.lock.release()
        self.cancelled.append(ident)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_never_interrupts_a_request_in_flight(monkeypatch, signum):
    """Regression: a SIGTERM that raised inside httpx's pool left its lock held, and the
    withdrawal then waited for it forever. Signals while waiting are only noted now."""
    jobs = LockedPollJobs(signum)

    @contextmanager
    def connect(url: str | None, act_as: str | None = None) -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(jobs=jobs)

    monkeypatch.setattr(run, "connect", connect)
    try:
        result = CliRunner().invoke(app, ["run", "--node", "n", "true"])
    finally:
        jobs.finished.set()
    assert result.exit_code == 128 + signum, (result.output, result.exception)
    assert jobs.cancelled == ["42"]
    assert "withdrew job 42" in result.stderr


CHILD = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
    "try:\n"
    "    print('ready', flush=True)\n"
    "    time.sleep(30)\n"
    "except KeyboardInterrupt:\n"
    "    sys.exit(5)\n"
)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 7), (signal.SIGINT, 5)])
def test_signals_to_procplan_are_forwarded_to_the_command(fake_server, signum, code):
    serve_job(fake_server, [running()])
    proc = start_run(fake_server.url, python(CHILD))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert [r.json() for r in fake_server.calls("POST", RELEASE)] == [{"exit_code": code}]


# -- pieces ------------------------------------------------------------------------------------


def test_withdraw_cancels_and_tolerates_a_refusal(fake_server, capsys):
    fake_server.add(*CANCEL, 200, {"message": "Job cancelled successfully"})
    fake_server.add("DELETE", "/api/v1/jobs/43", 409, {"error": "job 43 is already completed"})
    with ProcPlanClient(fake_server.url) as client:
        run.withdraw(client, "42")
        run.withdraw(client, "43")
    assert capsys.readouterr().err == (
        "procplan: withdrew job 42\nprocplan: job 43: job 43 is already completed\n"
    )


def test_watchdog_kills_a_child_that_ignores_sigterm(fake_server):
    fake_server.add("POST", BEAT, 200, {**BEAT_OK, "state": "cancelled"})
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    code += "print('ready', flush=True); time.sleep(30)"
    child = subprocess.Popen(python(code), stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    with ProcPlanClient(fake_server.url) as client:
        watchdog = supervise.Watchdog(client, "42", child, interval=0.05, grace=0.3)
        watchdog.start()
        try:
            assert child.wait(timeout=20) == -signal.SIGKILL
        finally:
            child.kill()
            watchdog.finish()
    assert len(fake_server.calls("POST", BEAT)) >= 2  # heartbeats go on through the grace


def test_job_env():
    base = {"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    env = supervise.job_env(parse_job(running()), base)
    assert env["PATH"] == "/bin"
    assert env["CUDA_VISIBLE_DEVICES"] == "1,3"
    none = supervise.job_env(
        parse_job({"id": "5", "gpu_indices": [], "allocated_gpus": None}), base
    )
    assert none["CUDA_VISIBLE_DEVICES"] == "-1"
    assert (none["PROCPLAN_GPUS"], none["PROCPLAN_NODES"], none["PROCPLAN_JOB_ID"]) == ("", "", "5")
    two = supervise.job_env(Job(id="6", node_ids=("a", "b")), {})
    assert two["PROCPLAN_NODES"] == "a,b"


@pytest.mark.parametrize(("returncode", "code"), [(0, 0), (3, 3), (-9, 137), (-15, 143)])
def test_exit_status(returncode, code):
    assert supervise.exit_status(returncode) == code


def test_heartbeat_interval_is_a_third_of_the_lease_capped():
    at = SUBMITTED_AT

    def interval(lease: datetime | None) -> float:
        return supervise.heartbeat_interval(Job(id="1", submitted_at=at, lease_expires_at=lease))

    assert supervise.heartbeat_interval(parse_job(pending())) == pytest.approx(1 / 3)
    assert interval(SUBMITTED_AT + timedelta(seconds=30)) == 10
    assert interval(SUBMITTED_AT + timedelta(seconds=90)) == 10
    assert interval(None) == 10
    assert interval(at) == 10


def test_stop_reason():
    assert supervise.stop_reason(parse_lease(BEAT_OK)) is None
    assert supervise.stop_reason(parse_lease({**BEAT_OK, "state": "lost"})) == "the job is lost"
    beat = {**BEAT_OK, "preempt_at": "2026-11-24T12:10:00+00:00"}
    preempted = supervise.stop_reason(parse_lease(beat))
    assert preempted == "the job is preempted (at 2026-11-24T12:10:00+00:00)"


def test_pick_node_matches_full_or_short_host_name():
    assert run.pick_node(["gpu1", "gpu2"], "gpu1.lab.example.org") == "gpu1"
    assert run.pick_node(["gpu1.lab"], "gpu1.lab") == "gpu1.lab"
    assert run.pick_node(["gpu1"], "laptop") is None


def test_a_bare_go_submit_answer_waits_for_the_rest(cli, fake_server):
    """``{"job_id"}`` alone (the Go shape) reads as a pending job: the first wait fills it in."""
    serve_job(fake_server, [running()])
    fake_server.add("POST", JOBS, 201, {"job_id": "42"})
    result = cli("--", *python("pass"))
    assert result.exit_code == 0, result.output
    assert "version" not in fake_server.calls("GET", WAIT)[0].query  # nothing known yet
