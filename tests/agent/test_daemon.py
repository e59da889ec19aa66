"""The agent daemon against a small fake agent-protocol server (real HTTP, real jobs).

The fake server speaks ADR 0006's routes from memory: sessions, heartbeats, a long poll of
the desired jobs, job events and log appends with offsets. It can be stopped and restarted on
the same port (a server outage that also forgets its sessions). Tests wait for conditions with
deadlines; none asserts a timing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest
from typer.testing import CliRunner

from procplan.agent.daemon import AgentConfig, run_agent
from procplan.agent.host import process_rows
from procplan.agent.logship import LogShipper
from procplan.cli.main import app
from procplan.core.readings import GpuProcess
from procplan.testing import FakeGpuReader, free_port, wait_until

TOKEN = "s3cret"
NODE = "n1"
PY = sys.executable


@dataclass
class AgentServerState:
    """What the fake server remembers; guarded by ``cond``."""

    token: str = TOKEN
    sessions: set[str] = field(default_factory=set)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[tuple[int, int, str], bytearray] = field(default_factory=dict)
    desired: list[dict[str, Any]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def version(self) -> str:
        return hashlib.sha1(json.dumps(self.desired, sort_keys=True).encode()).hexdigest()[:12]

    def set_desired(self, jobs: list[dict[str, Any]]) -> None:
        with self.cond:
            self.desired = jobs
            self.cond.notify_all()

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        with self.cond:
            return [e for e in self.events if e["type"] == kind]

    def log(self, job_id: int, run: int = 0, stream: str = "stdout") -> bytes:
        with self.cond:
            return bytes(self.logs.get((job_id, run, stream), b""))


def _route(state: AgentServerState, method: str, path: str, query: dict[str, str],
           body: bytes) -> tuple[int, dict[str, Any]]:  # fmt: skip
    if method == "POST" and path == "/api/v1/agents/register":
        data = json.loads(body)
        with state.cond:
            session = f"s{len(state.registrations) + 1}"
            state.registrations.append(data)
            state.sessions.add(session)
        return 200, {
            "node_id": data["node_id"], "session": session, "interval_s": data["interval_s"],
            "down_after_s": 3 * data["interval_s"], "server_time": time.time(),
            "gpus": [{"id": f"{data['node_id']}-gpu{d['index']}", "index": d["index"],
                      "uuid": d["uuid"]} for d in data["devices"]],
            "warnings": [],
        }  # fmt: skip
    match = re.fullmatch(r"/api/v1/agents/([^/]+)/(heartbeat|jobs|events|jobs/(\d+)/logs)", path)
    if match is None:
        return 404, {"error": "no such route", "status": 404}
    data = json.loads(body) if body and not match.group(2).endswith("logs") else {}
    session = data.get("session") or query.get("session")
    with state.cond:
        if session not in state.sessions:
            return 409, {"error": "register again", "status": 409, "code": "unknown_session"}
        if match.group(2).endswith("logs"):
            return _append_log(state, int(match.group(3)), query, body)
        if match.group(2) == "heartbeat":
            state.heartbeats.append(data)
            return 200, {"ok": True}
        if match.group(2) == "events":
            state.events.extend(data["events"])
            results = [
                {"job_id": e["job_id"], "run": e["run"], "state": "ok"} for e in data["events"]
            ]
            return 200, {"results": results}
        deadline = time.monotonic() + float(query.get("wait", "1"))
        while state.version() == query.get("version") and time.monotonic() < deadline:
            state.cond.wait(deadline - time.monotonic())
        return 200, {"version": state.version(), "jobs": state.desired}


def _append_log(state: AgentServerState, job_id: int, query: dict[str, str],
                body: bytes) -> tuple[int, dict[str, Any]]:  # fmt: skip
    rank = int(query.get("rank", 0))
    key = (job_id, int(query["run"]), query["stream"] + (f".{rank}" if rank else ""))
    with state.cond:
        have = state.logs.setdefault(key, bytearray())
        if int(query["offset"]) != len(have):
            return 409, {"error": "offset mismatch", "status": 409, "code": "offset_mismatch",
                         "size": len(have)}  # fmt: skip
        have.extend(body)
        return 200, {"size": len(have), "truncated": False}


class FakeAgentServer:
    def __init__(self) -> None:
        self.state = AgentServerState()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if self.headers.get("Authorization") != f"Bearer {state.token}":
                    status, answer = 401, {"error": "agent token missing or wrong", "status": 401,
                                           "code": "unauthorized"}  # fmt: skip
                else:
                    status, answer = _route(state, self.command, parts.path, query, body)
                content = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self, forget_sessions: bool = True) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if forget_sessions:
            with self.state.cond:
                self.state.sessions.clear()
                self.state.cond.notify_all()


@pytest.fixture
def server() -> Iterator[FakeAgentServer]:
    fake = FakeAgentServer()
    fake.start()
    yield fake
    fake.stop()


class RunningAgent:
    def __init__(self, config: AgentConfig, reader: FakeGpuReader) -> None:
        self.stop_event = threading.Event()
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, args=(config, reader), daemon=True)
        self.thread.start()

    def _run(self, config: AgentConfig, reader: FakeGpuReader) -> None:
        self.code = run_agent(config, self.stop_event, reader=reader, reader_name="fake")

    def stop(self) -> int | None:
        self.stop_event.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the agent did not stop"
        return self.code


@pytest.fixture
def start_agent(server: FakeAgentServer, tmp_path: Path) -> Iterator[Callable[..., RunningAgent]]:
    agents: list[RunningAgent] = []

    def start(reader: FakeGpuReader | None = None, **overrides: Any) -> RunningAgent:
        config = AgentConfig(
            server_url=server.url, token=TOKEN, node_id=NODE, interval_s=0.2,
            state_dir=tmp_path / "state", address="10.1.2.3", poll_wait_s=1.0,
            allow_root_jobs=True,  # the jobs run as this test's user, root in some CI
        )  # fmt: skip
        for name, value in overrides.items():
            setattr(config, name, value)
        agent = RunningAgent(config, reader or FakeGpuReader(2, host=NODE))
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        if agent.thread.is_alive():
            agent.stop()


def job(workdir: Path, *command: str, job_id: int = 17, **fields: Any) -> dict[str, Any]:
    user = psutil.Process().username()
    return {
        "id": job_id, "run": 0, "user": user, "name": "t", "command": list(command),
        "workdir": str(workdir), "env": [["GREETING", "hello"]],
        "gpus": [{"id": f"{NODE}-gpu1", "index": 1, "uuid": "GPU-x"}], "nodes": [NODE],
        "node_rank": 0, "grace_s": 5, "stop": None, "launched": None, **fields,
    }  # fmt: skip


def exited(state: AgentServerState, job_id: int) -> dict[str, Any] | None:
    return next((e for e in state.events_of("exited") if e["job_id"] == job_id), None)


def test_registers_heartbeats_runs_a_job_reports_and_ships_its_log(
    server: FakeAgentServer, start_agent: Callable[..., RunningAgent], tmp_path: Path
) -> None:
    reader = FakeGpuReader(2, host=NODE)
    reader.set_reading(1, utilization_pct=55.0)
    agent = start_agent(reader)
    state = server.state
    wait_until(lambda: state.heartbeats, what="a heartbeat")
    registration = state.registrations[0]
    assert {k: registration[k] for k in ("node_id", "address", "interval_s", "reader")} == {
        "node_id": NODE, "address": "10.1.2.3", "interval_s": 0.2, "reader": "fake",
    }  # fmt: skip
    assert registration["pid"] == os.getpid()
    assert [d["uuid"] for d in registration["devices"]] == ["GPU-fake-n1-00", "GPU-fake-n1-01"]
    beat = state.heartbeats[0]
    assert beat["session"] == "s1" and beat["read_error"] is None and beat["jobs"] == []
    assert [r["utilization_pct"] for r in beat["readings"]] == [0.0, 55.0]

    script = "import os; print(os.environ['GREETING'], os.environ['CUDA_VISIBLE_DEVICES']); exit(3)"
    state.set_desired([job(tmp_path, PY, "-c", script)])
    end = wait_until(lambda: exited(state, 17), what="the job's exit")
    assert {k: end[k] for k in ("run", "exit_code", "signal", "reason")} == {
        "run": 0, "exit_code": 3, "signal": None, "reason": "exited",
    }  # fmt: skip
    (started,) = state.events_of("started")
    assert started["job_id"] == 17 and started["pid"] > 0
    assert state.log(17) == b"hello 1\n"  # shipped before the exit was reported
    assert (tmp_path / "procplan-17.out").read_text() == "hello 1\n"
    time.sleep(0.5)  # a few more polls and heartbeats: the job never starts again
    assert {e["pid"] for e in state.events_of("started")} == {started["pid"]}
    assert agent.stop() == 0


def test_gpu_processes_are_matched_to_jobs_and_stopped_jobs_are_signalled(
    server: FakeAgentServer, start_agent: Callable[..., RunningAgent], tmp_path: Path
) -> None:
    reader = FakeGpuReader(2, host=NODE)
    agent = start_agent(reader)
    state = server.state
    script = "import time; print('up', flush=True); time.sleep(60)"
    state.set_desired([job(tmp_path, PY, "-c", script)])
    (started,) = wait_until(lambda: state.events_of("started"), what="the start")
    pid = started["pid"]
    reader.add_process(1, pid, 1000)
    reader.add_process(0, os.getpid(), 10)  # not a job's: no job id

    def matched() -> dict[str, Any] | None:
        with state.cond:
            beats = list(state.heartbeats)
        return next((b for b in reversed(beats) if len(b["processes"]) == 2), None)

    beat = wait_until(matched, what="a heartbeat with the processes")
    job_proc, other = beat["processes"]
    assert (job_proc["pid"], job_proc["job_id"], job_proc["gpu_uuid"]) == (
        pid,
        17,
        "GPU-fake-n1-01",
    )
    assert job_proc["ancestors"][0] == os.getpid()  # launched by this (agent) process
    assert job_proc["command"] and job_proc["user"]
    assert other["job_id"] is None
    assert beat["jobs"] == [{"id": 17, "run": 0, "pid": pid}]
    wait_until(lambda: state.log(17) == b"up\n", what="the log")

    reader.fail_next(2)
    failed = wait_until(
        lambda: next((b for b in list(state.heartbeats) if b["read_error"]), None),
        what="read error",
    )
    assert failed["readings"] == [] and "simulated GPU read failure" in failed["read_error"]

    state.set_desired([])
    end = wait_until(lambda: exited(state, 17), what="the stop")
    assert (end["reason"], end["signal"], end["exit_code"]) == ("stopped", signal.SIGTERM, None)
    assert agent.stop() == 0


def test_a_wrong_token_is_fatal(server: FakeAgentServer, tmp_path: Path) -> None:
    config = AgentConfig(server.url, "wrong", node_id=NODE, state_dir=tmp_path / "s", address="x")
    assert run_agent(config, threading.Event(), reader=FakeGpuReader(1)) == 1
    assert server.state.registrations == []


def test_an_outage_reregisters_and_jobs_keep_running(
    server: FakeAgentServer, start_agent: Callable[..., RunningAgent], tmp_path: Path
) -> None:
    agent = start_agent()
    state = server.state
    state.set_desired([job(tmp_path, PY, "-c", "import time; time.sleep(60)")])
    (started,) = wait_until(lambda: state.events_of("started"), what="the start")
    pid = started["pid"]
    server.stop()  # refuses connections and forgets every session
    time.sleep(1.0)
    server.start()
    wait_until(lambda: len(state.registrations) >= 2, what="registering again")
    wait_until(lambda: any(b["session"] != "s1" for b in list(state.heartbeats)), what="new beats")
    beat = state.heartbeats[-1]
    assert beat["jobs"] == [{"id": 17, "run": 0, "pid": pid}]
    assert psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert state.events_of("exited") == []
    state.set_desired([])
    wait_until(lambda: exited(state, 17), what="the stop")
    assert agent.stop() == 0


def test_a_stopped_agent_leaves_jobs_running_and_a_new_one_adopts_them(
    server: FakeAgentServer, start_agent: Callable[..., RunningAgent], tmp_path: Path
) -> None:
    state = server.state
    first = start_agent()
    desired = job(tmp_path, PY, "-c", "import time; time.sleep(60)")
    state.set_desired([desired])
    (started,) = wait_until(lambda: state.events_of("started"), what="the start")
    assert first.stop() == 0
    pid = started["pid"]
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    state.set_desired([{**desired, "launched": {"pid": pid, "at": started["at"]}}])
    second = start_agent()
    wait_until(lambda: len(state.registrations) == 2, what="the second agent")
    wait_until(
        lambda: any(
            b["jobs"] == [{"id": 17, "run": 0, "pid": pid}] for b in list(state.heartbeats)[-3:]
        ),
        what="the adopted job in a heartbeat",
    )
    # Not launched again (a start may be reported twice: events are idempotent).
    assert {e["pid"] for e in state.events_of("started")} == {pid}
    state.set_desired([])
    end = wait_until(lambda: exited(state, 17), what="the stop")
    assert end["reason"] == "stopped"  # a job we did not start: exit status unknown
    assert (end["exit_code"], end["signal"]) == (None, None)
    assert second.stop() == 0
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # this test process was the first agent: reap its child


def test_log_shipping_resumes_from_the_size_the_server_has(
    server: FakeAgentServer, start_agent: Callable[..., RunningAgent], tmp_path: Path
) -> None:
    state = server.state
    state.logs[(17, 0, "stdout")] = bytearray(b"01234")  # shipped before an agent restart
    start_agent()
    state.set_desired([job(tmp_path, PY, "-c", "print('0123456789')")])
    wait_until(lambda: exited(state, 17), what="the exit")
    assert state.log(17) == b"0123456789\n"


def test_a_requeued_gang_rank_ships_only_its_run_as_its_rank(
    server: FakeAgentServer, start_agent: Callable[..., RunningAgent], tmp_path: Path
) -> None:
    (tmp_path / "procplan-17.out.1").write_text("run 0 of rank 1\n")  # a shared file system
    state = server.state
    start_agent()
    spec = job(tmp_path, PY, "-c", "import os; print(os.environ['WORLD_SIZE'])", run=1,
               nodes=[NODE, "other"], node_rank=1, previous_end="preempted for job 9")  # fmt: skip
    state.set_desired([spec])
    wait_until(lambda: exited(state, 17), what="the exit")
    shipped = state.log(17, run=1, stream="stdout.1")
    assert shipped.startswith(b"==== procplan: job 17 run 2 (--run 1) started ")
    assert shipped.endswith(b"; previous run: preempted for job 9 ====\n2\n")
    assert (tmp_path / "procplan-17.out.1").read_bytes() == b"run 0 of rank 1\n" + shipped
    assert state.log(17, run=1) == b""  # nothing as rank 0


def test_log_shipper_reads_new_bytes_in_bounded_chunks(tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    out.write_bytes(b"abcdefgh")
    shipper = LogShipper(chunk_bytes=3)
    shipper.track((1, 0), str(out), str(out))  # one file for both streams: shipped once
    shipper.track((2, 0), str(out), str(err))  # stderr not written yet
    assert shipper.tracked() == [(1, 0), (2, 0)]
    first = shipper.pending([(1, 0)])
    assert [(c.key, c.stream, c.offset, c.data) for c in first] == [((1, 0), "stdout", 0, b"abc")]
    shipper.acknowledge((1, 0), "stdout", first[0].end)
    assert [c.data for c in shipper.pending([(1, 0)])] == [b"def"]
    shipper.resume((1, 0), "stdout", 7)  # the server said it has 7 bytes
    assert [c.data for c in shipper.pending([(1, 0)])] == [b"h"]
    shipper.acknowledge((1, 0), "stdout", 8, done=True)  # truncated by the server: no more
    out.write_bytes(b"abcdefghij")
    assert shipper.pending([(1, 0)]) == []
    err.write_bytes(b"E")
    assert {(c.stream, c.data) for c in shipper.pending([(2, 0)])} == {
        ("stdout", b"abc"),
        ("stderr", b"E"),
    }
    shipper.forget((2, 0))
    assert shipper.tracked() == [(1, 0)] and shipper.offset((2, 0), "stderr") is None


def test_process_rows_tolerate_vanished_processes() -> None:
    rows = process_rows([GpuProcess("GPU-1", 2**22 + 12345, 5)], {})
    assert rows == [{"gpu_uuid": "GPU-1", "pid": 2**22 + 12345, "used_memory_mb": 5, "user": None,
                     "command": None, "job_id": None, "ancestors": []}]  # fmt: skip


# -- the command line ---------------------------------------------------------------------------


def test_cli_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROCPLAN_AGENT_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["agent", "--server", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "no token" in result.output
    result = CliRunner().invoke(app, ["agent", "--token", "t", "--reader", "cuda"])
    assert result.exit_code == 2


def test_cli_exits_1_on_a_wrong_token(server: FakeAgentServer, tmp_path: Path) -> None:
    env = {"PROCPLAN_AGENT_TOKEN": "wrong", "PROCPLAN_URL": server.url}
    args = ["agent", "--fake-gpus", "2", "--state-dir", str(tmp_path), "--node-id", NODE]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 1


def test_cli_agent_stops_cleanly_on_sigterm(server: FakeAgentServer, tmp_path: Path) -> None:
    cmd = [PY, "-m", "procplan.cli.main", "agent", "--server", server.url, "--token", TOKEN,
           "--fake-gpus", "8", "--interval", "0.2", "--node-id", NODE,
           "--state-dir", str(tmp_path / "state")]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: server.state.heartbeats, timeout=20, what="a heartbeat")
        registration = server.state.registrations[0]
        assert len(registration["devices"]) == 8
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"stopping" in err
