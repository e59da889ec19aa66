"""A node's state as ``NodeService`` keeps it in this process: the agent side's settings, the
live record of each node that talks to this process, and the small pure steps a heartbeat
takes on them (which GPU a reading is, when a job ended, the status after a report)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from procplan.core.jobs import Job
from procplan.core.model import Node
from procplan.core.node_endings import EndedJob
from procplan.core.readings import GpuReading
from procplan.service.history import Retention
from procplan.store.nodes_repo import NodeStatus

__all__ = ["LiveNode", "NodeSettings", "by_gpu", "end_of", "ended_at", "replaced_status"]


@dataclass(frozen=True)
class NodeSettings:
    """The agent side's knobs (from ``config.Settings``)."""

    agent_token: str | None = None
    local_tokens: frozenset[str] = frozenset()  # the embedded agents' own tokens
    missed_heartbeats: int = 3
    requeue_lost: bool = True
    max_requeues: int = 3
    idle_booking_minutes: int = 30
    restart_grace_s: float = 60.0
    batch_requires_agent: bool = True
    retention: Retention = field(default_factory=Retention)
    log_max_mb: int = 16


@dataclass(slots=True)
class LiveNode:
    """A node's latest state in this process (the ``node_status`` row, fresher)."""

    status: NodeStatus
    dirty: bool = False
    idle_since: dict[str, float] = field(default_factory=dict)
    held: dict[int, frozenset[str]] = field(default_factory=dict)  # running job → its GPUs here
    ended: dict[int, EndedJob] = field(default_factory=dict)  # jobs that ended here lately
    looked_up: dict[int, float] = field(default_factory=dict)  # job ids the agent named → when


def end_of(job: Job | None, now: float) -> float | None:
    """When ``job`` ended, by the server's clock and never after ``now`` (``None``: it has
    not ended, or is unknown)."""
    return None if job is None or job.ended_at is None else min(float(job.ended_at), now)


def ended_at(entry: EndedJob | float) -> float:
    return entry.ended_at if isinstance(entry, EndedJob) else entry


def by_gpu(node: Node, readings: tuple[GpuReading, ...]) -> list[tuple[str, GpuReading]]:
    by_index = {gpu.index: gpu.id for gpu in node.gpus}
    return [(by_index[r.index], r) for r in readings if not r.mig and r.index in by_index]


def replaced_status(status: NodeStatus, now: float, report: dict[str, Any]) -> NodeStatus:
    """The status after a heartbeat at ``now`` carrying ``report``: seen, online."""
    return dataclasses.replace(
        status, last_seen=now, online=True, offline_since=None, report=report
    )
