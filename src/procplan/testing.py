"""Fakes shipped with the package so tests (ours and users') need no mocks.

``FakeClock`` is a settable clock; ``FakeGpuReader`` simulates a host's GPUs (for tests and
for ``procplan server --demo`` on machines without GPUs); ``ServerProcess`` runs a real server
and ``AgentProcess`` a real node agent on fake GPUs, for end-to-end tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from procplan.agent.fake import FakeGpuReader
from procplan.core.timeutil import Instant

__all__ = [
    "AgentProcess",
    "FakeClock",
    "FakeGpuReader",
    "ServerProcess",
    "ThreadedServer",
    "free_port",
    "wait_until",
]

T = TypeVar("T")


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: Instant = 1_790_000_000) -> None:
        self._now = start

    def now(self) -> Instant:
        return self._now

    def set(self, instant: Instant) -> None:
        self._now = instant

    def advance(self, seconds: int) -> Instant:
        self._now += seconds
        return self._now


class ServerProcess:
    """A real ``procplan server`` in a subprocess on a free port, for tests and benchmarks.

    ``start()`` returns once ``/health`` answers; the server's stderr is kept so that a
    failed start reports why (in ``log_file`` when given: a file never fills up and blocks a
    chatty server the way an unread pipe does). Use as a context manager or call ``stop()``.
    """

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        log_file: Path | None = None,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.args = args
        self.env = env or {}
        self.log_file = log_file
        self.port = free_port()
        # ``tls``: the server speaks HTTPS (``args`` name its certificate); the health check
        # verifies it with this context.
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        cmd = [sys.executable, "-m", "procplan.cli.main", "server", "--port", str(self.port)]
        env = {**os.environ, "PROCPLAN_LOG_LEVEL": "warning", **self.env}
        with contextlib.ExitStack() as files:  # the child keeps its own copy of the log's fd
            stderr: Any = subprocess.PIPE
            if self.log_file is not None:
                stderr = files.enter_context(self.log_file.open("ab"))
            self.proc = subprocess.Popen(
                [*cmd, *self.args], env=env, stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self._stderr()}")
            if self._healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server at {self.url} not healthy after {timeout}s: {self._stderr()}")

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("server not started")
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _healthy(self) -> bool:
        import httpx

        try:
            verify = self.tls if self.tls is not None else True
            return httpx.get(f"{self.url}/health", timeout=1.0, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    def _stderr(self) -> str:
        if self.log_file is not None:
            return self.log_file.read_text(errors="replace").strip()[-2000:]
        if self.proc is None or self.proc.stderr is None or self.proc.poll() is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace").strip()[-2000:]


class AgentProcess:
    """A real ``procplan agent`` in a subprocess, on ``gpus`` fake GPUs, reporting every
    ``interval`` seconds to ``url`` as node ``node_id``; its output goes to ``log_file``.
    ``stop()`` asks it to end (SIGTERM), then kills it. A context manager."""

    def __init__(
        self, url: str, token: str, node_id: str, state_dir: Path, log_file: Path, *,
        gpus: int = 4, interval: float = 0.5, extra: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.args = [
            sys.executable, "-m", "procplan.cli.main", "agent", "--server", url,
            "--token", token, "--node-id", node_id, "--fake-gpus", str(gpus),
            "--state-dir", str(state_dir), "--interval", str(interval), *extra,
        ]  # fmt: skip
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with self.log_file.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int | None:
        """End it (SIGTERM, SIGKILL after 15 s); its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def __enter__(self) -> AgentProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], T], timeout: float = 10.0, step: float = 0.02, what: str = ""
) -> T:
    """``condition()``'s first truthy value, asked every ``step`` seconds; ``AssertionError``
    naming ``what`` after ``timeout``. For tests of things that happen in other threads or
    processes: wait for the fact, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not seen within {timeout} s: {what or condition}")
        time.sleep(step)


class ThreadedServer:
    """An ASGI app served by a real uvicorn on a free port, in a thread of the test process:
    real sockets and keep-alive connections, with the app's objects (store, clock) still at
    hand. ``with ThreadedServer(app) as url: ...``."""

    def __init__(self, app: Any, peer_identity: bool = False) -> None:
        """``peer_identity``: serve with the server's own protocol, which tells the app the
        Unix uid of each local client (as ``procplan server`` does)."""
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra: dict[str, Any] = {}
        if peer_identity:
            extra["http"] = "procplan.peercred:PeerHttpProtocol"
        config = uvicorn.Config(app, port=self.port, log_level="warning", access_log=False, **extra)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(lambda: self.server.started, what="uvicorn to start")
        return self.url

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
