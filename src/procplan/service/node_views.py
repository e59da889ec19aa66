"""The cluster view: every node with its live readings, processes, holders and flags.

One view serves ``/api/v1/nodes`` (``procplan nodes``, ``procplan top``, the web board) and
``/metrics``, so that they all show the same thing. This module gathers it as values
(``core.node_view``) from the nodes' last reports, the running jobs and the bookings in force;
``wire.nodes`` renders it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from procplan.core.jobs import Job
from procplan.core.maintenance import DOWN_REASON, Drain, sched_state
from procplan.core.model import Booking, Gpu, Node
from procplan.core.node_usage import GpuFlag
from procplan.core.node_view import (
    AgentInfo,
    ClusterView,
    GpuView,
    Liveness,
    NodeView,
    SeenProcess,
)
from procplan.core.readings import GpuReading
from procplan.core.timeutil import Instant
from procplan.service.nodes import NodeService
from procplan.store.idle_repo import IdleStore
from procplan.store.nodes_repo import NodeStatus
from procplan.wire.node_status import flags_of, foreign_of, processes_of, readings_of


def cluster_view(service: NodeService, node_id: str | None = None) -> ClusterView:
    """The whole cluster (or one node, when ``node_id`` is given and exists)."""
    now = service.clock.now()
    topology = service.topology()
    statuses = service.statuses()
    running = service.running_by_node()
    booked = _bookings_now(service, now)
    warned = _warned_gpus(service, booked)
    drains = service.maintenance.drains()
    views = tuple(
        node_view(service, node, statuses.get(node.id), running.get(node.id, []),
                  booked.get(node.id, []), now, warned, drains.get(node.id))
        for node in topology.nodes
        if node_id is None or node.id == node_id
    )  # fmt: skip
    return ClusterView(now=now, nodes=views)


def _warned_gpus(service: NodeService, booked: Mapping[str, list[Booking]]) -> frozenset[str]:
    """The GPUs of bookings in force whose owner was warned as idle (ADR 0013): one read of
    their stored idle state."""
    ids = [b.id for bookings in booked.values() for b in bookings]
    if not ids:
        return frozenset()
    states = IdleStore(service.bookings.store, service.bookings.bookings.writes).states(ids)
    return frozenset(
        gpu
        for bookings in booked.values()
        for b in bookings
        if (s := states.get(b.id)) is not None and s.warned_at is not None and not s.keep
        for gpu in b.gpu_ids
    )


def _bookings_now(service: NodeService, now: Instant) -> dict[str, list[Booking]]:
    found: dict[str, list[Booking]] = {}
    for booking in service.bookings.active_at(None, now):
        found.setdefault(booking.node_id, []).append(booking)
    return found


def node_view(
    service: NodeService,
    node: Node,
    status: NodeStatus | None,
    running: Sequence[Job],
    bookings: Sequence[Booking],
    now: Instant,
    warned: frozenset[str] = frozenset(),
    drain: Drain | None = None,
) -> NodeView:
    report: Mapping[str, Any] = status.report if status is not None else {}
    state: Liveness
    if status is None:
        state = "unmanaged"
    else:
        state = "online" if service.is_online(status, float(now)) else "offline"
    last = _Last.of(report, live=state != "offline")
    gpus = tuple(
        _gpu_view(gpu, last, _holder(gpu.id, running, bookings), gpu.id in warned)
        for gpu in node.gpus
    )
    in_use = sum(1 for gpu in gpus if gpu.in_use)
    busy = bool(running) or bool(bookings)
    word = sched_state(liveness=state, drain=drain, busy=busy, gpus_in_use=in_use, gpus=len(gpus))
    reason = drain.reason if drain is not None else DOWN_REASON if word == "down" else None
    return NodeView(
        node=node,
        state=state,
        hostname=None if status is None else status.hostname,
        address=None if status is None else status.address,
        last_seen=None if status is None else status.last_seen,
        agent=None if status is None else _agent(status),
        read_error=report.get("read_error"),
        gpus=gpus,
        sched_state=word,
        reason=reason,
        drain=drain,
    )


class _Last(NamedTuple):
    """A node's last report, decoded once for all its GPUs. An offline node's readings would
    look live: it keeps only what memory sizes need, and GPUs keep identity and holder."""

    live: bool
    readings: list[GpuReading]
    processes: list[SeenProcess]
    foreign: frozenset[str]
    flags: dict[str, list[str]]

    @classmethod
    def of(cls, report: Mapping[str, Any], live: bool) -> _Last:
        if not live:
            return cls(False, readings_of(report), [], frozenset(), {})
        foreign = frozenset(foreign_of(report))
        return cls(True, readings_of(report), processes_of(report), foreign, flags_of(report))


def _agent(status: NodeStatus) -> AgentInfo:
    agent = status.agent
    return AgentInfo(
        version=agent.get("agent_version"),
        reader=agent.get("reader"),
        os_user=agent.get("os_user"),
        interval_s=status.interval_s,
    )


def _gpu_view(gpu: Gpu, last: _Last, holder: Job | Booking | None, warned: bool) -> GpuView:
    mine = [r for r in last.readings if r.index == gpu.index]
    main = next((r for r in mine if not r.mig), None)
    return GpuView(
        gpu=gpu,
        memory_total_mb=(main.memory_total_mb if main is not None else None) or gpu.memory_mb,
        reading=main if last.live else None,
        foreign=gpu.id in last.foreign,
        flags=(*last.flags.get(gpu.id, ()), *((GpuFlag.IDLE_WARNED.value,) if warned else ())),
        holder=holder,
        processes=tuple(p for p in last.processes if p.gpu_id == gpu.id),
        mig=tuple(r for r in mine if r.mig) if last.live else (),
    )


def _holder(
    gpu_id: str, running: Sequence[Job], bookings: Sequence[Booking]
) -> Job | Booking | None:
    """Who holds the GPU now: a running job first (it is what uses it), else a booking."""
    for job in running:
        if gpu_id in job.gpu_ids:
            return job
    for booking in bookings:
        if gpu_id in booking.gpu_ids:
            return booking
    return None
