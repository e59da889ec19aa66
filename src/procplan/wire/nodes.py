"""``/api/v1/nodes`` and ``/api/v1/nodes/{id}/history``.

One document serves ``procplan nodes``, ``procplan top``, the web board and ``/metrics``, so
that they all show the same thing (the shape is in the ADR 0006 helper contract and in
``tests/api/test_agents_api.py``). It keeps the fields nodes had before agents existed (``id``,
``name``, ``gpu_count``, and per GPU ``id``, ``kind``, ``index``, ``uuid``, ``memory_mb``) and
adds the live ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from procplan.core.jobs import Job
from procplan.core.maintenance import NodeRecord
from procplan.core.model import Booking
from procplan.core.node_view import AgentInfo, ClusterView, GpuView, NodesSummary, NodeView
from procplan.core.timeutil import Instant, to_iso
from procplan.wire.base import Json
from procplan.wire.bookings import booking_holder

__all__ = ["cluster_json", "history_json", "maintenance_json", "node_json"]


def cluster_json(view: ClusterView) -> Json:
    """``GET /api/v1/nodes``: when, the counts, and every node."""
    return {
        "generated_at": to_iso(view.now),
        "summary": _summary(view.summary),
        "nodes": [node_json(node, view.now) for node in view.nodes],
    }


def node_json(view: NodeView, now: Instant) -> Json:
    """One node; ``last_seen_age_s`` is counted from ``now``."""
    last_seen, drain = view.last_seen, view.drain
    return {
        "id": view.node.id,
        "name": view.node.name,
        "gpu_count": len(view.node.gpus),
        "state": view.state,
        "hostname": view.hostname,
        "address": view.address,
        "last_seen": None if last_seen is None else to_iso(int(last_seen)),
        "last_seen_age_s": None if last_seen is None else round(now - last_seen, 1),
        "agent": None if view.agent is None else _agent(view.agent),
        "read_error": view.read_error,
        "gpus": [_gpu(gpu) for gpu in view.gpus],
        # ADR 0020: sinfo's STATE and REASON; ``state`` above stays the agent's liveness.
        "sched_state": view.sched_state,
        "reason": view.reason,
        "drained_at": None if drain is None else to_iso(drain.since),
        "drained_by": None if drain is None else drain.by,
    }


def _agent(agent: AgentInfo) -> Json:
    return {
        "version": agent.version,
        "reader": agent.reader,
        "os_user": agent.os_user,
        "interval_s": agent.interval_s,
    }


def _gpu(view: GpuView) -> Json:
    gpu, reading = view.gpu, view.reading
    return {
        "id": gpu.id,
        "index": gpu.index,
        "uuid": gpu.uuid,
        "kind": gpu.kind,
        "model": gpu.kind,
        "memory_mb": gpu.memory_mb,
        "memory_total_mb": view.memory_total_mb,
        "utilization_pct": None if reading is None else reading.utilization_pct,
        "memory_used_mb": None if reading is None else reading.memory_used_mb,
        "temperature_c": None if reading is None else reading.temperature_c,
        "power_w": None if reading is None else reading.power_w,
        "foreign": view.foreign,
        "flags": list(view.flags),
        "holder": _holder(view.holder),
        "processes": [
            {
                "pid": p.pid,
                "user": p.user,
                "command": p.command,
                "used_memory_mb": p.used_memory_mb,
                "kind": p.kind,
                "job_id": p.job_id,
            }
            for p in view.processes
        ],
        "mig": [
            {
                "uuid": r.uuid,
                "utilization_pct": r.utilization_pct,
                "memory_used_mb": r.memory_used_mb,
                "memory_total_mb": r.memory_total_mb,
            }
            for r in view.mig
        ],
    }


def _holder(holder: Job | Booking | None) -> Json | None:
    if holder is None:
        return None
    if isinstance(holder, Booking):
        return booking_holder(holder)
    return {"kind": "job", "job_id": holder.id, "user": holder.user, "name": holder.name}


def _summary(summary: NodesSummary) -> Json:
    return {
        "nodes": summary.nodes,
        "online": summary.online,
        "offline": summary.offline,
        "unmanaged": summary.unmanaged,
        "gpus": summary.gpus,
        "gpus_in_use": summary.gpus_in_use,
        "foreign_gpus": summary.foreign_gpus,
        "flagged_gpus": summary.flagged_gpus,
    }


def history_json(
    node_id: str,
    metric: str,
    unit: str,
    agg: str,
    step: int,
    start: Instant,
    end: Instant,
    series: Iterable[tuple[str, Sequence[Sequence[object]]]],
    index: Mapping[str, int],
) -> Json:
    """``GET /api/v1/nodes/{id}/history``: per GPU (``index``: its PCI index by id), the
    metric's points ``[instant, value]`` in steps of ``step`` seconds."""
    return {
        "node": node_id,
        "metric": metric,
        "unit": unit,
        "agg": agg,
        "step": step,
        "start": to_iso(start),
        "end": to_iso(end),
        "series": [
            {"gpu": gpu_id, "index": index[gpu_id], "points": [list(p) for p in pts]}
            for gpu_id, pts in series
        ],
    }


def maintenance_json(record: NodeRecord) -> Json:
    """The answer of ``POST /api/v1/nodes/{id}/drain|resume|remove`` (ADR 0020): the node's
    maintenance state after the change, and the bookings whose owners a drain told."""
    drain = record.drain
    return {
        "node": record.node_id,
        "drained": drain is not None,
        "reason": None if drain is None else drain.reason,
        "drained_at": None if drain is None else to_iso(drain.since),
        "drained_by": None if drain is None else drain.by,
        "removed": record.removed_at is not None,
        "removed_at": None if record.removed_at is None else to_iso(record.removed_at),
        "notified_bookings": [b.id for b in record.notified],
    }
