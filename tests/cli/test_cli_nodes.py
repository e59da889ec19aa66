"""``procplan nodes`` and ``procplan logs`` (and their client methods) against real HTTP servers.

Node routes use the canned server of ``conftest.py``. Log pages need response headers and
answers that depend on ``offset``, so they get a small server of their own (``log_server``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from procplan.cli import nodes as nodes_cli
from procplan.cli.main import app
from procplan.client import LOG_PAGE, ApiError, LogChunk, ProcPlanClient, ServerUnreachable
from procplan.client.answers import parse_log_headers


def gpu(node: str, index: int, **fields: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": f"{node}-gpu{index}",
        "index": index,
        "uuid": f"GPU-{node}-{index}",
        "model": "NVIDIA H100 80GB HBM3",
        "memory_total_mb": 81559,
        "utilization_pct": 97.0,
        "memory_used_mb": 40000,
        "temperature_c": 61.0,
        "power_w": 402.5,
        "foreign": False,
        "flags": [],
        "holder": None,
        "processes": [],
        "mig": [],
    }
    value.update(fields)
    return value


NULL_READINGS = {
    "utilization_pct": None,
    "memory_used_mb": None,
    "temperature_c": None,
    "power_w": None,
}
ONLINE = {
    "id": "gpu-01",
    "name": "gpu-01",
    "state": "online",
    "hostname": "gpu-01.lab",
    "address": "10.0.0.5",
    "last_seen": "2026-11-22T09:59:59Z",
    "last_seen_age_s": 1.2,
    "agent": {"version": "0.1.0", "reader": "nvml", "os_user": "root", "interval_s": 2.0},
    "read_error": None,
    "gpus": [
        gpu(
            "gpu-01",
            0,
            holder={"kind": "job", "job_id": 17, "user": "alice", "name": "train"},
            processes=[
                {
                    "pid": 123,
                    "user": "alice",
                    "command": "python train.py",
                    "used_memory_mb": 39000,
                    "kind": "job",
                    "job_id": 17,
                }
            ],
        ),
        gpu(
            "gpu-01",
            1,
            utilization_pct=55.0,
            foreign=True,
            flags=["unbooked_use"],
            processes=[
                {
                    "pid": 9,
                    "user": "mallory",
                    "command": "python mine.py",
                    "used_memory_mb": 1000,
                    "kind": "unbooked",
                    "job_id": None,
                }
            ],
        ),
        gpu(
            "gpu-01",
            2,
            utilization_pct=1.0,
            flags=["idle_booking"],
            holder={
                "kind": "booking",
                "booking_id": 3,
                "user": "bob",
                "label": "exp",
                "end": "2026-11-22T18:00:00Z",
            },
        ),
    ],
}
OFFLINE = {
    **ONLINE,
    "id": "gpu-02",
    "name": "gpu-02",
    "state": "offline",
    "hostname": "gpu-02.lab",
    "last_seen_age_s": 185.0,
    "gpus": [gpu("gpu-02", 0, model="NVIDIA A100-SXM4-40GB", **NULL_READINGS)],
}
UNMANAGED = {
    "id": "cfg-01",
    "name": "cfg-01",
    "state": "unmanaged",
    "hostname": None,
    "address": None,
    "last_seen": None,
    "last_seen_age_s": None,
    "agent": None,
    "read_error": None,
    "gpus": [gpu("cfg-01", 0, model="Tesla V100", memory_total_mb=None, **NULL_READINGS)],
}
NODES = {
    "generated_at": "2026-11-22T10:00:00Z",
    "summary": {
        "nodes": 3,
        "online": 1,
        "offline": 1,
        "unmanaged": 1,
        "gpus": 5,
        "gpus_in_use": 2,
        "foreign_gpus": 1,
        "flagged_gpus": 2,
    },
    "nodes": [ONLINE, OFFLINE, UNMANAGED],
}


@pytest.fixture
def cli(fake_server):
    runner = CliRunner()

    def invoke(*args: str, url: str | None = None):
        return runner.invoke(app, list(args), env={"PROCPLAN_URL": url or fake_server.url})

    return invoke


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


# -- procplan nodes ---------------------------------------------------------------------------


def test_nodes_view_shows_readings_holders_processes_and_flags(cli, fake_server):
    fake_server.add("GET", "/api/v1/nodes", 200, NODES)
    result = cli("nodes")
    assert result.exit_code == 0, result.output
    out = result.stdout
    header = lines_with(out, "gpu-01.lab")[0]
    assert header.split() == ["gpu-01", "online", "gpu-01.lab", "1s", "ago", "nvml"]
    first = lines_with(out, "[0] NVIDIA H100")[0]
    for text in ("61°C", "97 %", "40000 / 81559 MB", "402 W", 'job 17 alice "train"',
                 "alice/python train.py(39000M)"):  # fmt: skip
        assert text in first
    foreign = lines_with(out, "[1] NVIDIA H100")[0]
    assert "⚠ in use without booking" in foreign and "mallory/python mine.py(1000M)" in foreign
    booked = lines_with(out, "[2] NVIDIA H100")[0]
    assert "booking #3 bob (exp) until" in booked and "⚠ booked but idle" in booked
    assert "gpu-02  offline for 3m" in out
    assert "[0] NVIDIA A100-SXM4-40GB | –, " in out and "– / 81559 MB, –" in out
    assert "cfg-01  unmanaged (no agent)" in out
    assert "[0] Tesla V100 | –," in out
    assert "3 nodes (1 online, 1 offline, 1 unmanaged) · 2/5 GPUs in use" in out


def test_nodes_without_processes(cli, fake_server):
    fake_server.add("GET", "/api/v1/nodes", 200, NODES)
    result = cli("nodes", "--no-processes")
    assert result.exit_code == 0, result.output
    assert "python train.py" not in result.stdout
    assert 'job 17 alice "train"' in result.stdout


def test_nodes_json_is_the_raw_payload(cli, fake_server):
    fake_server.add("GET", "/api/v1/nodes", 200, NODES)
    result = cli("nodes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == NODES


def test_nodes_one_node(cli, fake_server):
    fake_server.add("GET", "/api/v1/nodes/gpu-02", 200, OFFLINE)
    result = cli("nodes", "--node", "gpu-02")
    assert result.exit_code == 0, result.output
    assert "gpu-02  offline for 3m" in result.stdout and "gpu-01" not in result.stdout
    as_json = cli("nodes", "--node", "gpu-02", "--json")
    assert json.loads(as_json.stdout) == OFFLINE
    assert [r.path for r in fake_server.requests] == ["/api/v1/nodes/gpu-02"] * 2


def test_nodes_unknown_node_exits_1(cli, fake_server):
    error = {"error": "unknown node 'nope'", "status": 404, "code": "unknown_node"}
    fake_server.add("GET", "/api/v1/nodes/nope", 404, error)
    result = cli("nodes", "--node", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: unknown node 'nope'\n"


def test_nodes_empty_cluster_says_what_to_do(cli, fake_server):
    fake_server.add("GET", "/api/v1/nodes", 200, {"summary": {"nodes": 0}, "nodes": []})
    result = cli("nodes")
    assert result.exit_code == 0, result.output
    assert "procplan agent" in result.stdout


def test_nodes_watch_redraws_until_ctrl_c(cli, fake_server, monkeypatch):
    fake_server.add("GET", "/api/v1/nodes", 200, NODES)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(nodes_cli.time, "sleep", sleep)
    result = cli("nodes", "-w", "0.5")
    assert result.exit_code == 0, result.output
    assert naps == [0.5, 0.5]
    assert len(fake_server.requests) == 2
    assert "gpu-01.lab" in result.stdout


def test_nodes_json_and_watch_is_a_usage_error(cli, fake_server):
    result = cli("nodes", "--json", "--watch", "1")
    assert result.exit_code == 2
    assert fake_server.requests == []


def test_nodes_unreachable_exits_2(cli, dead_url):
    result = cli("nodes", url=dead_url)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cannot reach ProcPlan server at {dead_url}: ")


# -- node client methods --------------------------------------------------------------------


def test_node_methods_hit_their_routes(fake_server):
    fake_server.add("GET", "/api/v1/nodes", 200, NODES)
    fake_server.add("GET", "/api/v1/nodes/gpu-01", 200, ONLINE)
    history = {"node": "gpu-01", "metric": "power", "series": []}
    fake_server.add("GET", "/api/v1/nodes/gpu-01/history", 200, history)
    with ProcPlanClient(fake_server.url) as client:
        assert client.nodes.list() == NODES
        assert client.nodes.get("gpu-01") == ONLINE
        answer = client.nodes.history(
            "gpu-01", "power", start="2026-11-22T09:00:00Z", end=1790003600, step=60, agg="max"
        )
        assert answer == history
        client.nodes.history("gpu-01")
    query = fake_server.requests[2].query
    assert query == {
        "metric": ["power"],
        "start": ["2026-11-22T09:00:00Z"],
        "end": ["2026-09-21T15:13:20+00:00"],
        "step": ["60"],
        "agg": ["max"],
    }
    assert fake_server.requests[3].query == {"metric": ["utilization"]}


# -- logs: a server that pages a growing log ---------------------------------------------------


@dataclass
class LogServer:
    """Serves ``GET /api/v1/jobs/{id}/logs`` for the jobs in ``logs``. Before each answer
    the next ``timeline`` step (bytes to append, new state) is applied, so a follower sees
    the log grow and the job end."""

    url: str = ""
    logs: dict[str, bytearray] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    truncated: bool = False
    timeline: list[tuple[bytes, str]] = field(default_factory=list)
    queries: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes, dict[str, str]]:
        with self.lock:
            self.queries.append(query)
            job = path.split("/")[4]
            if job not in self.logs:
                body = {"error": f"job {job} does not exist", "status": 404, "code": "unknown_job"}
                return 404, json.dumps(body).encode(), {"Content-Type": "application/json"}
            if self.timeline:
                more, state = self.timeline.pop(0)
                self.logs[job] += more
                self.states[job] = state
            data = bytes(self.logs[job])
            offset, limit = int(query["offset"][0]), int(query["limit"][0])
            headers = {
                "Content-Type": "application/octet-stream",
                "X-Log-Size": str(len(data)),
                "X-Log-Truncated": "true" if self.truncated else "false",
                "X-Job-State": self.states[job],
            }
            return 200, data[offset : offset + limit], headers


@pytest.fixture
def log_server() -> Iterator[LogServer]:
    server = LogServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, body, headers = server.page(parts.path, parse_qs(parts.query))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def logs_cli(log_server, monkeypatch):
    monkeypatch.setattr(nodes_cli, "FOLLOW_POLL_S", 0.0)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["logs", *args], env={"PROCPLAN_URL": log_server.url})

    return invoke


def test_logs_reads_every_page(logs_cli, log_server):
    body = bytes(range(256)) * 300  # 76800 bytes: two pages, not valid UTF-8
    log_server.logs["17"] = bytearray(body)
    log_server.states["17"] = "completed"
    result = logs_cli("17")
    assert result.exit_code == 0, result.output
    # Controls other than tab/LF/CR and raw C1 bytes (0x80-0x9F) are dropped; every other
    # byte, not UTF-8 included, comes through as stored.
    kept = b"\t\n\r" + bytes(range(0x20, 0x7F)) + bytes(range(0xA0, 0x100))
    assert result.stdout_bytes == kept * 300
    assert [(q["offset"], q["limit"], q["stream"]) for q in log_server.queries] == [
        (["0"], [str(LOG_PAGE)], ["stdout"]),
        ([str(LOG_PAGE)], [str(LOG_PAGE)], ["stdout"]),
    ]
    assert result.stderr == ""


def test_logs_stderr_stream_and_run(logs_cli, log_server):
    log_server.logs["17"] = bytearray(b"oops\n")
    log_server.states["17"] = "failed"
    result = logs_cli("17", "--stderr", "--run", "2")
    assert (result.exit_code, result.stdout) == (0, "oops\n")
    assert log_server.queries[0]["stream"] == ["stderr"]
    assert log_server.queries[0]["run"] == ["2"]


def test_logs_follow_ends_when_the_job_finished_and_nothing_new_came(logs_cli, log_server):
    log_server.logs["17"] = bytearray()
    log_server.states["17"] = "pending"
    log_server.timeline = [
        (b"", "pending"),
        (b"hello\n", "running"),
        (b"", "running"),
        (b"world\n", "completed"),
        (b"", "completed"),
    ]
    result = logs_cli("17", "-f")
    assert result.exit_code == 0, result.output
    assert result.stdout == "hello\nworld\n"
    assert [q["offset"][0] for q in log_server.queries] == ["0", "0", "6", "6", "12"]


def test_logs_follow_stops_on_ctrl_c(logs_cli, log_server, monkeypatch):
    log_server.logs["17"] = bytearray(b"step 1\n")
    log_server.states["17"] = "running"

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(nodes_cli.time, "sleep", interrupt)
    result = logs_cli("17", "--follow")
    assert (result.exit_code, result.stdout) == (0, "step 1\n")


def test_logs_truncated_note_on_stderr(logs_cli, log_server):
    log_server.logs["17"] = bytearray(b"first part\n")
    log_server.states["17"] = "completed"
    log_server.truncated = True
    result = logs_cli("17")
    assert (result.exit_code, result.stdout) == (0, "first part\n")
    assert "truncated" in result.stderr


def test_logs_empty_log_says_so(logs_cli, log_server):
    log_server.logs["17"] = bytearray()
    log_server.states["17"] = "pending"
    result = logs_cli("17")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "job 17 (pending): no stdout stored\n"


def test_logs_unknown_job_exits_1(logs_cli):
    result = logs_cli("99")
    assert result.exit_code == 1
    assert result.stderr == "error: job 99 does not exist\n"


def test_job_logs_parses_the_headers(log_server):
    log_server.logs["5"] = bytearray(b"abcdef")
    log_server.states["5"] = "running"
    log_server.truncated = True
    with ProcPlanClient(log_server.url) as client:
        chunk = client.jobs.logs(5, offset=2, limit=3)
        with pytest.raises(ApiError) as refused:
            client.jobs.logs("404")
    assert chunk == LogChunk(b"cde", 6, True, "running")
    data, size, truncated, state = chunk
    assert (data, size, truncated, state) == (b"cde", 6, True, "running")
    assert (refused.value.status, refused.value.code) == (404, "unknown_job")
    assert log_server.queries[0] == {"stream": ["stdout"], "offset": ["2"], "limit": ["3"]}


def test_job_logs_unreachable(dead_url):
    with ProcPlanClient(dead_url) as client, pytest.raises(ServerUnreachable):
        client.jobs.logs(1)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, LogChunk(b"xy", 12, False, None)),
        ({"X-Log-Size": "oops", "X-Log-Truncated": "TRUE"}, LogChunk(b"xy", 12, True, None)),
        (
            {"X-Log-Size": "99", "X-Log-Truncated": "false", "X-Job-State": " lost "},
            LogChunk(b"xy", 99, False, "lost"),
        ),
    ],
)
def test_parse_log_headers_tolerates_missing_or_odd_headers(headers, expected):
    assert parse_log_headers(httpx.Headers(headers), 10, b"xy") == expected
