"""What agents report and what the server answers them (ADR 0006), as plain values;
``api.models.agents`` reads reports off the wire, strictly, and ``wire.agents`` writes the
answers. Readings and processes reuse the reader's own value types (``core.readings``) so the
server sees what the reader saw."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from procplan.core.jobs import Job
from procplan.core.model import Gpu, GpuDevice
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
    agent launched (and their descendants), ``ancestors`` (parent PID chain) lets the server
    find interactive jobs; ``ending``: the job ended moments ago and this is its process
    still tearing down (the agent's word, within its grace: ``core.node_endings``)."""

    gpu_uuid: str
    pid: int
    used_memory_mb: int | None
    user: str | None
    command: str | None
    job_id: int | None
    ancestors: tuple[int, ...]
    ending: bool = False


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


# ---- what the server answers -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registered:
    """The answer to a registration: the agent's session, its pace and the GPUs as the
    topology now knows them (their ids), with what the server had to say about them."""

    node_id: str
    session: str
    interval_s: float
    down_after_s: float  # the node is offline after this long without a heartbeat
    server_time: float
    gpus: tuple[Gpu, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DesiredRun:
    """A run of a batch job that a node's agent should be running (ADR 0006 §2), with what
    it needs to launch it there: the node's share of the GPUs, the node's rank in the job and
    where rank 0 listens, the deadline (epoch seconds; ``None`` without a time limit) and
    the grace between SIGTERM and SIGKILL."""

    job: Job
    gpus: tuple[Gpu, ...]
    node_rank: int
    master_addr: str
    master_port: int
    deadline: int | None
    grace_s: int


@dataclass(frozen=True, slots=True)
class DesiredJobs:
    """A node's desired runs and their digest (the poll's ``version``: the agent sends it
    back, and the poll waits while it still matches)."""

    version: str
    runs: tuple[DesiredRun, ...]


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What became of one agent event: the job's state after it, or ``ignored`` (with why,
    when the job refused it)."""

    job_id: int
    run: int
    type: str
    state: str
    message: str | None = None


@dataclass(frozen=True, slots=True)
class LogShipped:
    """A job log after an appended chunk: its stored size, and whether the cap cut it."""

    size: int
    truncated: bool
