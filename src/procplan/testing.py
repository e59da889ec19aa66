"""Fakes shipped with the package so tests (ours and users') need no mocks.

``FakeClock`` is a settable clock; ``FakeGpuReader`` simulates a host's GPUs (for tests and
for ``procplan server --demo`` on machines without GPUs); ``ServerProcess`` runs a real server
for end-to-end tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from procplan.core.model import GpuDevice, Node
from procplan.core.readings import GpuProcess, GpuReadError, GpuReading
from procplan.core.timeutil import Instant

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


class FakeGpuReader:
    """A host with ``count`` simulated GPUs, discovered like real ones.

    Deterministic: the UUIDs derive from ``host`` and the index, so a restarted demo server
    finds the same GPUs. It is a full ``GpuReader``: GPUs start idle (0 % utilization, no
    memory used, 30 °C, 60 W) until scripted with ``set_reading``; processes are added with
    ``add_process``; ``fail_next(n)`` makes the next ``n`` reads (``devices``, ``readings``,
    ``processes``) raise ``GpuReadError``. ``node()`` never fails.
    """

    IDLE_TEMPERATURE_C = 30.0
    IDLE_POWER_W = 60.0

    def __init__(
        self,
        count: int = 8,
        *,
        host: str = "localhost",
        model: str = "Simulated H100 80GB",
        memory_mb: int = 81_559,
    ) -> None:
        if count < 0:
            raise ValueError("count must not be negative")
        self.count = count
        self.host = host
        self.model = model
        self.memory_mb = memory_mb
        self.closed = False
        self._readings: dict[int, GpuReading] = {}
        self._processes: list[tuple[int, GpuProcess]] = []
        self._failures = 0

    def devices(self) -> list[GpuDevice]:
        """The GPUs in PCI bus order."""
        self._read()
        return self._devices()

    def readings(self) -> list[GpuReading]:
        """One reading per GPU, in index order: idle unless scripted."""
        self._read()
        return [self._readings.get(i) or self._idle(i) for i in range(self.count)]

    def processes(self) -> list[GpuProcess]:
        """The processes added with ``add_process``, in the order they were added."""
        self._read()
        return [proc for _index, proc in self._processes]

    def close(self) -> None:
        self.closed = True

    def set_reading(self, index: int, **fields: object) -> GpuReading:
        """Script GPU ``index``: e.g. ``set_reading(0, utilization_pct=97.0, power_w=None)``.

        Fields not given keep their current value; ``index``/``uuid`` cannot be changed.
        """
        self._check_index(index)
        if {"index", "uuid"} & fields.keys():
            raise ValueError("index and uuid are fixed")
        current = self._readings.get(index) or self._idle(index)
        reading = dataclasses.replace(current, **fields)  # type: ignore[arg-type]
        self._readings[index] = reading
        return reading

    def add_process(
        self,
        index: int,
        pid: int,
        used_memory_mb: int | None = None,
        user: str | None = None,
        command: str | None = None,
    ) -> GpuProcess:
        """A process on GPU ``index`` (readings are not changed: script them separately)."""
        self._check_index(index)
        proc = GpuProcess(self._uuid(index), pid, used_memory_mb, user, command)
        self._processes.append((index, proc))
        return proc

    def clear_processes(self, index: int | None = None) -> None:
        """Forget the processes of GPU ``index``, or of all GPUs."""
        self._processes = [(i, p) for i, p in self._processes if index is not None and i != index]

    def fail_next(self, n: int = 1) -> None:
        """The next ``n`` reads raise ``GpuReadError`` (like a wedged driver)."""
        if n < 0:
            raise ValueError("n must not be negative")
        self._failures = n

    def _read(self) -> None:
        if self._failures > 0:
            self._failures -= 1
            raise GpuReadError(f"simulated GPU read failure on {self.host}")

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.count:
            raise ValueError(f"no GPU {index} on {self.host} (it has {self.count})")

    def _uuid(self, index: int) -> str:
        return f"GPU-fake-{self.host}-{index:02d}"

    def _idle(self, index: int) -> GpuReading:
        return GpuReading(
            index=index,
            uuid=self._uuid(index),
            utilization_pct=0.0,
            memory_used_mb=0,
            memory_total_mb=self.memory_mb,
            temperature_c=self.IDLE_TEMPERATURE_C,
            power_w=self.IDLE_POWER_W,
        )

    def _devices(self) -> list[GpuDevice]:
        return [
            GpuDevice(
                index=i,
                uuid=self._uuid(i),
                name=self.model,
                memory_mb=self.memory_mb,
            )
            for i in range(self.count)
        ]

    def node(self, node_id: str | None = None) -> Node:
        """This host as a cluster node (id defaults to the host name)."""
        name = node_id or self.host
        return Node(id=name, name=name, gpus=tuple(d.as_gpu(name) for d in self._devices()))


class ServerProcess:
    """A real ``procplan server`` in a subprocess on a free port, for tests and benchmarks.

    ``start()`` returns once ``/health`` answers; the server's stderr is kept so that a
    failed start reports why (in ``log_file`` when given: a file never fills up and blocks a
    chatty server the way an unread pipe does). Use as a context manager or call ``stop()``.
    """

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, log_file: Path | None = None
    ) -> None:
        self.args = args
        self.env = env or {}
        self.log_file = log_file
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
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
            return httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _stderr(self) -> str:
        if self.log_file is not None:
            return self.log_file.read_text(errors="replace").strip()[-2000:]
        if self.proc is None or self.proc.stderr is None or self.proc.poll() is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace").strip()[-2000:]


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
