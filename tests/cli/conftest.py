"""Servers for the CLI tests, without mocks.

- ``fake_server``: a tiny real HTTP server with canned answers. Each test declares the routes
  it needs (method + path → status, body); the server records every request so tests can
  check what the client sent (query, headers, JSON body).
- ``live``: the real app (demo cluster, in-process) behind uvicorn on loopback TCP, without
  peer identity, so a command is whoever its token says (``live.token(user)``) or nobody.
- ``unix_live``: the same app on a Unix socket with the server's own protocol
  (``PeerHttpProtocol``), so the kernel names the caller: the user running the tests, who is
  the server's own user and therefore an admin.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.conftest import demo_settings, token_for
from typer.testing import CliRunner

from procplan.cli.durations import set_display_zone
from procplan.cli.main import app
from procplan.client.auth import AS_ENV, TOKEN_ENV
from procplan.core.identity import Role
from procplan.server import Composed, compose
from procplan.testing import ThreadedServer, wait_until


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Canned:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"


@dataclass
class FakeServer:
    """Routes are keyed by ``(METHOD, path)``; unknown routes answer a JSON 404. A route may
    instead answer a sequence (``add_sequence``), for clients that poll a changing job."""

    url: str = ""
    routes: dict[tuple[str, str], Canned] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    sequences: dict[tuple[str, str], list[Canned]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, path: str, status: int = 200, body: Any = None) -> None:
        """Answer ``body`` (JSON-encoded unless it is ``bytes``) to ``METHOD path``."""
        self.routes[(method.upper(), path)] = Canned(status, _encode(body))

    def add_sequence(self, method: str, path: str, answers: list[tuple[int, Any]]) -> None:
        """Give these ``(status, body)`` answers in turn, then repeat the last one (a job
        that is pending on the first wait and running on the second)."""
        canned = [Canned(status, _encode(body)) for status, body in answers]
        self.sequences[(method.upper(), path)] = canned

    def answer(self, method: str, path: str) -> Canned:
        with self.lock:
            queue = self.sequences.get((method, path))
            if queue:
                return queue.pop(0) if len(queue) > 1 else queue[0]
        return self.routes.get((method, path)) or Canned(
            404, b'{"error": "no such route", "status": 404}'
        )

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]


def _encode(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fake.requests.append(
                Recorded(self.command, parts.path, parse_qs(parts.query), dict(self.headers), body)
            )
            canned = fake.answer(self.command, parts.path)
            self.send_response(canned.status)
            self.send_header("Content-Type", canned.content_type)
            self.send_header("Content-Length", str(len(canned.body)))
            self.end_headers()
            self.wfile.write(canned.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output clean."""

    return Handler


@pytest.fixture(autouse=True)
def private_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Every CLI test gets its own config directory (``procplan login``'s credentials) and no
    token or acting-for user from the developer's shell."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(AS_ENV, raising=False)
    # times are typed and shown in UTC unless a test picks a zone (``--tz``, ``PROCPLAN_TZ``)
    monkeypatch.setenv("PROCPLAN_TZ", "UTC")
    set_display_zone("UTC")
    return config / "procplan"


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    fake = FakeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_url() -> str:
    """A local URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _booking(label: str, priority: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": extra.pop("id", 1),
        "user_label": label,
        "start": "2026-11-23T09:00:00+00:00",
        "end": "2026-11-23T17:00:00+00:00",
        "status": "active",
        "gpu_ids": ["node-a-gpu0"],
        "priority": priority,
        **extra,
    }


def day_payload(cells: dict[str, dict[int, list[dict[str, Any]]]], days: int = 7) -> dict[str, Any]:
    """A ``granularity=day`` availability payload for node-a (2 A100s) from 2026-11-23.

    ``cells[gpu_id][day_index]`` lists the bookings of that slot; other slots are free.
    """
    first = datetime(2026, 11, 23, tzinfo=UTC)
    starts = [first + timedelta(days=i) for i in range(days + 1)]
    day_list = [
        {"key": a.date().isoformat(), "start": a.isoformat(), "end": b.isoformat()}
        for a, b in itertools.pairwise(starts)
    ]
    rows = []
    for gpu_id in ("node-a-gpu0", "node-a-gpu1"):
        slots = []
        for idx, day in enumerate(day_list):
            bookings = cells.get(gpu_id, {}).get(idx, [])
            slots.append(
                {
                    "start": day["start"],
                    "end": day["end"],
                    "status": "partial" if bookings else "free",
                    "booked_hours": 8 if bookings else 0,
                    "total_hours": 24,
                    "priority": bookings[-1]["priority"] if bookings else None,
                    "bookings": bookings,
                }
            )
        rows.append({"gpu": {"id": gpu_id, "kind": "A100"}, "day_slots": slots})
    return {
        "node": {
            "id": "node-a",
            "name": "Training Node A",
            "gpu_count": 2,
            "gpus": [{"id": "node-a-gpu0", "kind": "A100"}, {"id": "node-a-gpu1", "kind": "A100"}],
        },
        "start": "2026-11-23T00:00:00+00:00",
        "end": starts[-1].isoformat(),
        "hours": [],
        "grid": {"hours": [], "days": day_list, "rows": rows},
    }


@pytest.fixture
def booking() -> Any:
    return _booking


@pytest.fixture
def make_day_payload() -> Any:
    return day_payload


@dataclass
class Live:
    """A running in-process server: its URL and the composed app (store, accounts) behind it."""

    composed: Composed
    url: str

    def token(self, user: str, role: Role = Role.USER) -> str:
        """A new API token of ``user`` (created with ``role`` unless it exists)."""
        return token_for(self.composed, user, role)

    def env(self, user: str | None = None, role: Role = Role.USER) -> dict[str, str]:
        """``CliRunner`` environment: this server, and ``user``'s token if given."""
        env = {"PROCPLAN_URL": self.url}
        if user is not None:
            env[TOKEN_ENV] = self.token(user, role)
        return env


@pytest.fixture
def live(sqlite_url: str) -> Iterator[Live]:
    """The demo cluster on loopback TCP with the system clock (tokens expire in real time)."""
    composed = compose(demo_settings(sqlite_url))
    try:
        with ThreadedServer(composed.app) as url:
            yield Live(composed, url)
    finally:
        composed.store.dispose()


class UnixSocketServer:
    """uvicorn on a Unix socket in a thread, with ``procplan server``'s HTTP protocol (the
    peer's uid from ``SO_PEERCRED``); ``ThreadedServer`` listens on TCP only."""

    def __init__(self, app: Any, path: str) -> None:
        import uvicorn

        from procplan.peercred import PeerHttpProtocol

        self.path = path
        config = uvicorn.Config(
            app, uds=path, http=PeerHttpProtocol, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(lambda: self.server.started, what="uvicorn on the Unix socket")
        return f"unix://{self.path}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def unix_live(sqlite_url: str) -> Iterator[Live]:
    """The demo cluster on a Unix socket, scheduler running (``procplan run`` needs it). The
    socket lives in a short directory: socket paths are limited to about 100 bytes."""
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="pp-")
    composed = compose(demo_settings(sqlite_url))
    composed.scheduler.start()
    try:
        with UnixSocketServer(composed.app, f"{directory}/procplan.sock") as url:
            yield Live(composed, url)
    finally:
        composed.scheduler.stop()
        composed.store.dispose()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def cli(fake_server: FakeServer) -> Callable[..., Any]:
    """Run ``procplan ARGS`` against ``fake_server`` (a module may define its own ``cli``)."""
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, Any] | None = None) -> Any:
        return runner.invoke(app, list(args), env={"PROCPLAN_URL": fake_server.url, **(env or {})})

    return invoke
