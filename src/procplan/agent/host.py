"""The agent's host: its configuration and what it reads of the machine it runs on.

``AgentConfig`` is what ``procplan agent`` and the server's embedded agent configure;
``build_reader`` picks the GPU reader (NVML, ``nvidia-smi``, a fake or none);
``OwnProcesses`` says which GPU processes belong to which job for the heartbeat (descendants
and the processes of runs that just ended included). The shell
(``agent/daemon.py``) uses them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
import psutil

from procplan.agent.protocol import Key, RunningJob
from procplan.agent.smi import describe_pid
from procplan.client import server_urls
from procplan.core.model import GpuDevice
from procplan.core.readings import GpuProcess, GpuReader, GpuReading

log = logging.getLogger("procplan.agent")

POLL_WAIT_S = 25.0
MAX_ANCESTORS = 16
READERS = ("auto", "nvml", "smi", "fake", "none")


@dataclass
class AgentConfig:
    server_url: str
    token: str
    node_id: str = dataclasses.field(default_factory=socket.gethostname)
    interval_s: float = 2.0
    reader: str = "auto"
    fake_gpus: int = 0
    state_dir: Path | None = None
    address: str | None = None
    poll_wait_s: float = POLL_WAIT_S
    allow_root_jobs: bool = False  # jobs of a uid-0 account run only when True
    # ``--demo``'s embedded agents: the jobs end with the agent (a real agent leaves them running
    # and adopts them on restart).
    stop_jobs_on_exit: bool = False
    # How the server's HTTPS certificate is checked: None is the system's CAs (or
    # $SSL_CERT_FILE); the server's embedded agents trust exactly its own certificate.
    tls: ssl.SSLContext | None = None


def default_state_dir(node_id: str) -> Path:
    return Path(platformdirs.user_state_dir("procplan")) / "agent" / node_id


def local_address(server_url: str) -> str:
    """The local IP that reaches the server (a UDP "connect" sends nothing), else the host
    name; of a list of servers, the first (they share one network in practice)."""
    parts = urlsplit(server_urls(server_url)[0])
    host = parts.hostname or "127.0.0.1"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        family, kind, proto, _name, target = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[
            0
        ]
        with socket.socket(family, kind, proto) as sock:
            sock.connect(target)
            return str(sock.getsockname()[0])
    except (OSError, ValueError):
        return socket.gethostname()


class NoGpus:
    """The reader of a host without NVIDIA GPUs: reports nothing."""

    def devices(self) -> list[GpuDevice]:
        return []

    def readings(self) -> list[GpuReading]:
        return []

    def processes(self) -> list[GpuProcess]:
        return []

    def close(self) -> None:
        pass


def build_reader(kind: str, fake_gpus: int = 0, host: str = "localhost") -> tuple[GpuReader, str]:
    """The GPU reader and its wire name. ``auto``: NVML when it finds GPUs, else
    ``nvidia-smi`` when it is on PATH, else none (said in a log line)."""
    from procplan.agent.nvml import NvmlReader
    from procplan.agent.smi import SmiReader

    if kind == "fake":
        from procplan.agent.fake import FakeGpuReader

        return FakeGpuReader(fake_gpus, host=host), "fake"
    if kind == "nvml":
        return NvmlReader(), "nvml"
    if kind == "smi":
        return SmiReader(), "smi"
    if kind == "none":
        return NoGpus(), "none"
    if kind != "auto":
        raise ValueError(f"unknown GPU reader {kind!r}: use one of {', '.join(READERS)}")
    if NvmlReader.available():
        return NvmlReader(), "nvml"
    if SmiReader.available():
        return SmiReader(), "smi"
    log.warning("no NVIDIA GPUs found (NVML sees none, nvidia-smi is not on PATH): "
                "this node reports no GPUs")  # fmt: skip
    return NoGpus(), "none"


# -- what a heartbeat says about GPU processes ---------------------------------------------


def _ancestors(pid: int) -> list[int]:
    chain: list[int] = []
    try:
        current = psutil.Process(pid).ppid()
        while current > 0 and len(chain) < MAX_ANCESTORS:
            chain.append(current)
            current = psutil.Process(current).ppid()
    except psutil.Error:
        pass
    return chain


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def process_rows(processes: list[GpuProcess], sessions: Mapping[int, Key]) -> list[dict[str, Any]]:
    """Heartbeat ``processes``: a process belongs to a job when it is in the session of a
    process the agent launched for it (``OwnProcesses.rows`` knows more: descendants that
    left the session and processes of runs that just ended)."""
    return OwnProcesses().rows(processes, sessions)


class OwnProcesses:
    """Which GPU processes are this agent's own, across heartbeats (issue #19).

    A process is a run's when it is in the session (= process group) of the run's launched
    process, or when that process (or any launched one) is among its ancestors, or when an
    earlier reading attributed its PID to the run: a process whose CUDA context outlives it
    is already gone from the process table (no session, no parents) but still listed by the
    driver. Processes of a run that exited within the machine's grace (``ending``) are
    reported with ``ending: true``, never as nobody's; a PID is remembered only while
    readings still show it. One heartbeat at a time uses it (the machine never overlaps
    heartbeats); a lock makes that safe anyway.
    """

    def __init__(
        self,
        session_of: Callable[[int], int | None] | None = None,
        ancestors_of: Callable[[int], list[int]] | None = None,
    ) -> None:
        self._session_of = session_of or _session_of
        self._ancestors_of = ancestors_of or _ancestors
        self._pids: dict[int, Key] = {}
        self._lock = threading.Lock()

    def rows(
        self,
        processes: list[GpuProcess],
        sessions: Mapping[int, Key],
        running: Iterable[RunningJob] | None = None,
        ending: Iterable[Key] = (),
    ) -> list[dict[str, Any]]:
        """Heartbeat ``processes``. ``sessions``: the launcher's process group id → run;
        ``running``: the machine's running runs (``None``: every run in ``sessions``);
        ``ending``: runs that exited moments ago."""
        live = {(j.id, j.run) for j in running} if running is not None else set(sessions.values())
        leaders = {j.pid: (j.id, j.run) for j in running or ()}
        leaders.update(sessions)
        recent = set(ending)
        with self._lock:
            remembered, self._pids = self._pids, {}
            rows = []
            for proc in processes:
                ancestors = self._ancestors_of(proc.pid)
                key = self._owner(proc.pid, ancestors, sessions, leaders, remembered)
                gone = key is not None and key not in live
                is_ending = gone and key in recent
                if key is not None and (key in live or is_ending):
                    self._pids[proc.pid] = key
                rows.append(_row(proc, key, ancestors, is_ending))
        return rows

    def _owner(
        self,
        pid: int,
        ancestors: list[int],
        sessions: Mapping[int, Key],
        leaders: Mapping[int, Key],
        remembered: Mapping[int, Key],
    ) -> Key | None:
        sid = self._session_of(pid)
        if sid is not None and sid in sessions:
            return sessions[sid]
        for candidate in (pid, *ancestors):
            if candidate in leaders:
                return leaders[candidate]
        return remembered.get(pid)


def _row(proc: GpuProcess, key: Key | None, ancestors: list[int], ending: bool) -> dict[str, Any]:
    user, command = proc.user, proc.command
    if user is None or command is None:
        found_user, found_command = describe_pid(proc.pid)
        user, command = user or found_user, command or found_command
    row: dict[str, Any] = {
        "gpu_uuid": proc.gpu_uuid, "pid": proc.pid, "used_memory_mb": proc.used_memory_mb,
        "user": user, "command": command, "job_id": key[0] if key else None,
        "ancestors": ancestors,
    }  # fmt: skip
    if ending:
        row["ending"] = True  # absent: false (the wire stays as it was for running jobs)
    return row


def quiet_http_logs() -> None:
    """httpx logs every request at INFO: an agent makes one every couple of seconds, which
    would bury what matters (registrations, job starts and exits) in a log at INFO."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
