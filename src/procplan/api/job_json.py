"""Jobs and tenants as wire dicts (ADR 0005 "Wire shapes"; COMPAT.md §2 and §3).

One rendering for every route, so the native API, the Go dialect and ``srun``'s ``/jobs`` agree
on what a job is: ids are strings (the Go client decodes them into strings and ``srun`` prints
them), instants are ISO 8601 or ``null``, and ``estimated_wait`` is nanoseconds (Go's
``time.Duration``). GPU indices are PCI order on the job's first node: what
``CUDA_VISIBLE_DEVICES`` counts in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from procplan.core.jobs import REASON_TEXT, Job, JobState, Tenant
from procplan.core.model import Topology
from procplan.core.timeutil import Instant, to_iso

NS_PER_S = 1_000_000_000

# local-gpu-scheduler's ``/jobs`` knows queued / running / done (COMPAT §2).
SRUN_STATUS = {
    JobState.PENDING: "queued",
    JobState.RUNNING: "running",
    JobState.COMPLETED: "done",
    JobState.FAILED: "done",
    JobState.LOST: "done",
    JobState.CANCELLED: "cancelled",
    JobState.PREEMPTED: "preempted",
}


def iso(instant: Instant | None) -> str | None:
    return None if instant is None else to_iso(instant)


def gpu_indices(job: Job, topology: Topology) -> list[int]:
    """PCI indices of the job's GPUs on its first node, ascending (``CUDA_VISIBLE_DEVICES``)."""
    if not job.node_ids:
        return []
    node = topology.node(job.node_ids[0])
    if node is None:
        return []
    index = {gpu.id: gpu.index for gpu in node.gpus}
    return sorted(index[gpu_id] for gpu_id in job.gpu_ids if gpu_id in index)


def queue_position(job: Job) -> int:
    """1-based place in the queue of a pending job; 0 otherwise (Go's zero value)."""
    if job.state is not JobState.PENDING:
        return 0
    position = job.extra.get("queue_position")
    return position if isinstance(position, int) and not isinstance(position, bool) else 0


def estimated_wait_ns(job: Job, now: Instant) -> int:
    """Go's ``estimated_wait``: nanoseconds until the estimated start; 0 when unknown."""
    if job.state is not JobState.PENDING or job.estimated_start is None:
        return 0
    return max(job.estimated_start - now, 0) * NS_PER_S


def _node_name(job: Job, topology: Topology) -> str | None:
    if not job.node_ids:
        return None
    node = topology.node(job.node_ids[0])
    return job.node_ids[0] if node is None else node.name


def _max_runtime_minutes(job: Job) -> int | None:
    return None if job.time_limit_s is None else -(-job.time_limit_s // 60)


def _go_extras(job: Job) -> dict[str, Any]:
    extra = job.extra
    return {
        "cpu_cores": extra.get("cpu_cores"),
        "memory_mb": extra.get("memory_mb"),
        "image": extra.get("image"),
        "gang_scheduling": bool(extra.get("gang_scheduling", job.nodes > 1)),
    }


def _placement(job: Job, topology: Topology, now: Instant) -> dict[str, Any]:
    """Where it runs, or why it waits and until when."""
    return {
        "node_name": _node_name(job, topology),
        "node_ids": list(job.node_ids),
        "allocated_gpus": list(job.gpu_ids) if job.gpu_ids else None,
        "gpu_indices": gpu_indices(job, topology),
        "reason": None if job.reason is None else job.reason.value,
        "reason_text": None if job.reason is None else REASON_TEXT[job.reason],
        "queue_position": queue_position(job),
        "estimated_start": iso(job.estimated_start),
        "estimated_wait": estimated_wait_ns(job, now),
        "borrowed": job.borrowed,
        "preempt_at": iso(job.preempt_at),
    }


def job_json(job: Job, topology: Topology, now: Instant, private: bool = True) -> dict[str, Any]:
    """The native job object (ADR 0005), with the Go scheduler's extra keys; ``private``
    off hides the environment (people put tokens there): only its owner and admins see it."""
    return {
        "id": str(job.id),
        "name": job.name,
        "user": job.user,
        "tenant_id": job.tenant,
        "kind": job.kind.value,
        "state": job.state.value,
        "priority": job.priority,
        "gpu_count": job.gpu_count,
        "nodes": job.nodes,
        "gpu_type": job.gpu_kind,
        "gpu_memory_mb": job.gpu_memory_mb,
        "time_limit_s": job.time_limit_s,
        "max_runtime_minutes": _max_runtime_minutes(job),
        "node_id": job.node_id,
        "booking_id": job.booking_id,
        "submitted_at": iso(job.submitted_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.ended_at),
        **_placement(job, topology, now),
        "exit_code": job.exit_code,
        "requeues": job.requeues,
        "command": list(job.command),
        "workdir": job.workdir,
        "env": dict(job.env) if private else None,
        "stdout": job.stdout_path,
        "stderr": job.stderr_path,
        "array_id": None if job.array_id is None else str(job.array_id),
        "array_index": job.array_index,
        "pid": job.pid,
        "host": job.host,
        "lease_expires_at": iso(job.lease_expires_at),
        "message": job.message,
        "version": job.version,
        **_go_extras(job),
        "job_id": str(job.id),
    }


def job_status_json(
    job: Job, topology: Topology, now: Instant, private: bool = True
) -> dict[str, Any]:
    """``GET /api/v1/jobs/{id}``: the Go ``JobStatus`` keys first, then the full job."""
    full = job_json(job, topology, now, private)
    head = ("job_id", "state", "message", "allocated_gpus", "node_name", "queue_position")
    tail = ("estimated_wait", "reason", "estimated_start")
    return {key: full[key] for key in (*head, *tail)} | full


def heartbeat_json(job: Job) -> dict[str, Any]:
    """What a client renewing its lease needs: go on, stop (``preempt_at``), or it is over."""
    return {
        "state": job.state.value,
        "lease_expires_at": iso(job.lease_expires_at),
        "preempt_at": iso(job.preempt_at),
        "version": job.version,
    }


def srun_job_json(job: Job, topology: Topology) -> dict[str, Any]:
    """An entry of local-gpu-scheduler's ``GET /jobs`` (COMPAT §2), plus a few extras."""
    return {
        "id": str(job.id),
        "gpus": gpu_indices(job, topology),
        "num_gpus": job.gpu_count,
        "status": SRUN_STATUS[job.state],
        "pid": job.pid if job.pid is not None else 0,
        "user": job.user,
        "name": job.name,
        "kind": job.kind.value,
        "state": job.state.value,
    }


def tenant_json(
    tenant: Tenant,
    gpus: int,
    jobs: int,
    usage_gpu_s: float,
    members: Sequence[str],
    managers: Sequence[str] = (),
) -> dict[str, Any]:
    """The Go scheduler's ``Tenant`` (flat quotas, ``null`` = unlimited) with our extras."""
    return {
        "id": tenant.id,
        "name": tenant.id,
        "email": tenant.email,
        "max_gpus": tenant.max_gpus,
        "max_gpu_memory_mb": tenant.max_gpu_memory_mb,
        "max_cpu_cores": tenant.max_cpu_cores,
        "max_memory_mb": tenant.max_memory_mb,
        "max_concurrent_jobs": tenant.max_jobs,
        "priority_tier": tenant.priority_tier,
        "fair_share_weight": tenant.fair_share_weight,
        "allow_preemption": tenant.allow_preemption,
        "allow_borrow": tenant.allow_borrow,
        "current_gpus": gpus,
        "current_jobs": jobs,
        "usage_gpu_hours": round(usage_gpu_s / 3600, 6),
        "members": list(members),
        "created_at": iso(tenant.created_at),
        "managers": list(managers),  # members who manage its members and quotas (#12)
    }
