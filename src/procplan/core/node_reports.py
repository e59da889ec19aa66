"""What agents report (ADR 0006), as plain values; ``api.models.agents`` reads them off the
wire, strictly. Readings and processes reuse the reader's own value types (``core.readings``)
so the server sees what the reader saw."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from procplan.core.model import GpuDevice
from procplan.core.readings import GpuReading

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 4096
MAX_DEVICES = 64
MAX_PROCESSES = 4096
MAX_EVENTS = 1000
MIN_INTERVAL_S = 0.2
MAX_INTERVAL_S = 300.0
EXIT_REASONS = frozenset({"exited", "time_limit", "stopped", "launch_failed", "lost"})


@dataclass(frozen=True, slots=True)
class Registration:
    """``POST /api/v1/agents/register``: who the agent is and what GPUs it found."""

    node_id: str
    hostname: str
    address: str
    interval_s: float
    devices: tuple[GpuDevice, ...]
    mig: Mapping[int, tuple[str, ...]]  # MIG instance uuids by parent GPU index
    agent: Mapping[str, object]  # version, reader, os_user, pid: shown, never interpreted


@dataclass(frozen=True, slots=True)
class ReportedProcess:
    """A GPU process as the agent saw it; ``job_id`` is set for processes of a batch job the
    agent launched, ``ancestors`` (parent PID chain) lets the server find interactive jobs."""

    gpu_uuid: str
    pid: int
    used_memory_mb: int | None
    user: str | None
    command: str | None
    job_id: int | None
    ancestors: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """One heartbeat: the readings, the GPU processes and the jobs the agent runs."""

    session: str
    readings: tuple[GpuReading, ...]
    processes: tuple[ReportedProcess, ...]
    jobs: tuple[tuple[int, int, int | None], ...]  # (job id, run, pid)
    read_error: str | None


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """A job run ``started`` (with its PID) or ``exited`` (with how)."""

    type: str
    job_id: int
    run: int
    at: float
    pid: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str = "exited"
    message: str = ""
