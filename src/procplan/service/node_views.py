"""``/api/v1/nodes``: every node with its live readings, processes, holders and flags.

One document serves ``procplan nodes``, ``procplan top``, the web board and ``/metrics``, so
that they all show the same thing (the shape is in the ADR 0006 helper contract and in
``tests/api/test_nodes_api.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from procplan.core.jobs import Job
from procplan.core.model import Booking, Gpu, Node
from procplan.core.timeutil import Instant, to_iso
from procplan.service.nodes import NodeService
from procplan.store.nodes_repo import NodeStatus

# Positions in the compact lists of ``node_status.report`` (see ``service.nodes``).
R_INDEX, R_UUID, R_UTIL, R_USED, R_TOTAL, R_TEMP, R_POWER, R_MIG = range(8)
P_GPU, P_PID, P_USER, P_COMMAND, P_MEMORY, P_KIND, P_JOB, P_UUID = range(8)


def nodes_document(service: NodeService, node_id: str | None = None) -> dict[str, Any]:
    """The whole cluster (or one node, when ``node_id`` is given and exists)."""
    now = service.clock.now()
    topology = service.bookings.topology()
    statuses = service.statuses()
    running = service.running_by_node()
    booked = _bookings_now(service, now)
    views = [
        node_view(service, node, statuses.get(node.id), running.get(node.id, []),
                  booked.get(node.id, []), now)
        for node in topology.nodes
        if node_id is None or node.id == node_id
    ]  # fmt: skip
    return {"generated_at": to_iso(now), "summary": _summary(views), "nodes": views}


def _bookings_now(service: NodeService, now: Instant) -> dict[str, list[Booking]]:
    found: dict[str, list[Booking]] = {}
    for booking in service.bookings.bookings.window(None, now, now + 1):
        if booking.is_active:
            found.setdefault(booking.node_id, []).append(booking)
    return found


def node_view(
    service: NodeService,
    node: Node,
    status: NodeStatus | None,
    running: Sequence[Job],
    bookings: Sequence[Booking],
    now: Instant,
) -> dict[str, Any]:
    report: Mapping[str, Any] = status.report if status is not None else {}
    if status is None:
        state = "unmanaged"
    else:
        state = "online" if service.is_online(status, float(now)) else "offline"
    gpus = [_gpu_view(gpu, report, running, bookings) for gpu in node.gpus]
    if state == "offline":  # stale readings would look live: keep only identity and holder
        for gpu in gpus:
            for key in ("utilization_pct", "memory_used_mb", "temperature_c", "power_w"):
                gpu[key] = None
            gpu["processes"], gpu["mig"], gpu["foreign"], gpu["flags"] = [], [], False, []
    return {
        "id": node.id,
        "name": node.name,
        "gpu_count": len(node.gpus),
        "state": state,
        "hostname": None if status is None else status.hostname,
        "address": None if status is None else status.address,
        "last_seen": None if status is None else to_iso(int(status.last_seen)),
        "last_seen_age_s": None if status is None else round(now - status.last_seen, 1),
        "agent": None if status is None else _agent(status),
        "read_error": report.get("read_error"),
        "gpus": gpus,
    }


def _agent(status: NodeStatus) -> dict[str, Any]:
    agent = status.agent
    return {
        "version": agent.get("agent_version"),
        "reader": agent.get("reader"),
        "os_user": agent.get("os_user"),
        "interval_s": status.interval_s,
    }


def _gpu_view(
    gpu: Gpu, report: Mapping[str, Any], running: Sequence[Job], bookings: Sequence[Booking]
) -> dict[str, Any]:
    readings = [r for r in report.get("readings", []) if r[R_INDEX] == gpu.index]
    main = next((r for r in readings if not r[R_MIG]), None)
    flags = report.get("flags", {}).get(gpu.id, [])
    return {
        "id": gpu.id,
        "index": gpu.index,
        "uuid": gpu.uuid,
        "kind": gpu.kind,
        "model": gpu.kind,
        "memory_mb": gpu.memory_mb,
        "memory_total_mb": (main[R_TOTAL] if main is not None else None) or gpu.memory_mb,
        "utilization_pct": None if main is None else main[R_UTIL],
        "memory_used_mb": None if main is None else main[R_USED],
        "temperature_c": None if main is None else main[R_TEMP],
        "power_w": None if main is None else main[R_POWER],
        "foreign": gpu.id in report.get("foreign", []),
        "flags": list(flags),
        "holder": _holder(gpu.id, running, bookings),
        "processes": [
            {
                "pid": p[P_PID],
                "user": p[P_USER],
                "command": p[P_COMMAND],
                "used_memory_mb": p[P_MEMORY],
                "kind": p[P_KIND],
                "job_id": p[P_JOB],
            }
            for p in report.get("processes", [])
            if p[P_GPU] == gpu.id
        ],
        "mig": [
            {
                "uuid": r[R_UUID],
                "utilization_pct": r[R_UTIL],
                "memory_used_mb": r[R_USED],
                "memory_total_mb": r[R_TOTAL],
            }
            for r in readings
            if r[R_MIG]
        ],
    }


def _holder(
    gpu_id: str, running: Sequence[Job], bookings: Sequence[Booking]
) -> dict[str, Any] | None:
    """Who holds the GPU now: a running job first (it is what uses it), else a booking."""
    for job in running:
        if gpu_id in job.gpu_ids:
            return {"kind": "job", "job_id": job.id, "user": job.user, "name": job.name}
    for booking in bookings:
        if gpu_id in booking.gpu_ids:
            return {
                "kind": "booking",
                "booking_id": booking.id,
                "user": booking.user,
                "label": booking.label,
                "end": to_iso(booking.end),
            }
    return None


def _summary(views: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    gpus = [gpu for view in views for gpu in view["gpus"]]
    return {
        "nodes": len(views),
        "online": sum(1 for v in views if v["state"] == "online"),
        "offline": sum(1 for v in views if v["state"] == "offline"),
        "unmanaged": sum(1 for v in views if v["state"] == "unmanaged"),
        "gpus": len(gpus),
        "gpus_in_use": sum(1 for g in gpus if g["holder"] is not None or g["processes"]),
        "foreign_gpus": sum(1 for g in gpus if g["foreign"]),
        "flagged_gpus": sum(1 for g in gpus if g["flags"]),
    }
