"""A node as the cluster view shows it (ADR 0006 §6): liveness, readings, processes, who holds
each GPU, flags. ``service.node_views`` builds these values from the nodes' last reports, the
running jobs and the bookings in force; ``wire.nodes`` renders them, and ``/metrics`` reads the
same document, so every consumer shows the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from procplan.core.jobs import Job
from procplan.core.maintenance import Drain, SchedState
from procplan.core.model import Booking, Gpu, Node
from procplan.core.readings import GpuReading
from procplan.core.timeutil import Instant

Liveness = Literal["online", "offline", "unmanaged"]  # unmanaged: no agent ever reported


@dataclass(frozen=True, slots=True)
class SeenProcess:
    """A GPU process as the node's last report classified it (``core.node_usage``):
    ``kind`` is a ``ProcessKind`` value, ``job_id`` the job it belongs to, if any."""

    gpu_id: str | None
    pid: int
    user: str | None
    command: str | None
    used_memory_mb: int | None
    kind: str
    job_id: int | None
    gpu_uuid: str


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """What the node's agent said about itself when it registered: shown, never interpreted."""

    version: object
    reader: object
    os_user: object
    interval_s: float


@dataclass(frozen=True, slots=True)
class GpuView:
    """One GPU now. An offline node's readings would look live, so its GPUs keep only their
    identity, memory size and holder: no reading, processes, MIG instances or flags."""

    gpu: Gpu
    memory_total_mb: int | None  # the last reading's, else the discovered size
    reading: GpuReading | None  # the whole GPU's (not a MIG instance's)
    foreign: bool  # runs processes the scheduler did not start: not handed out
    flags: tuple[str, ...]  # ``GpuFlag`` values
    holder: Job | Booking | None  # a running job first (it is what uses it), else a booking
    processes: tuple[SeenProcess, ...]
    mig: tuple[GpuReading, ...]

    @property
    def in_use(self) -> bool:
        return self.holder is not None or bool(self.processes)


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node now; ``hostname``, ``address``, ``last_seen`` and ``agent`` are ``None`` for a
    node no agent ever reported for. ``sched_state`` and ``reason`` are the ``sinfo``-like
    summary (``core.maintenance``): ``state`` stays the agent's liveness."""

    node: Node
    state: Liveness
    hostname: str | None
    address: str | None
    last_seen: float | None  # the server's receive time of the last heartbeat
    agent: AgentInfo | None
    read_error: object  # the agent's last GPU read error, if any
    gpus: tuple[GpuView, ...]
    sched_state: SchedState = "idle"
    reason: str | None = None  # the drain's reason, or why the node is down
    drain: Drain | None = None


@dataclass(frozen=True, slots=True)
class NodesSummary:
    nodes: int
    online: int
    offline: int
    unmanaged: int
    gpus: int
    gpus_in_use: int
    foreign_gpus: int
    flagged_gpus: int


def summarize(views: Sequence[NodeView]) -> NodesSummary:
    """Counts over ``views``: nodes by liveness, GPUs in use (held or running processes),
    foreign and flagged."""
    gpus = [gpu for view in views for gpu in view.gpus]
    return NodesSummary(
        nodes=len(views),
        online=sum(1 for v in views if v.state == "online"),
        offline=sum(1 for v in views if v.state == "offline"),
        unmanaged=sum(1 for v in views if v.state == "unmanaged"),
        gpus=len(gpus),
        gpus_in_use=sum(1 for g in gpus if g.in_use),
        foreign_gpus=sum(1 for g in gpus if g.foreign),
        flagged_gpus=sum(1 for g in gpus if g.flags),
    )


@dataclass(frozen=True, slots=True)
class ClusterView:
    """Every node (or the one asked for) as of ``now``."""

    now: Instant
    nodes: tuple[NodeView, ...]

    @property
    def summary(self) -> NodesSummary:
        return summarize(self.nodes)
