"""The job object of the native API and the Go dialect (ADR 0005 "Wire shapes"; COMPAT.md §3).

One rendering for every route, so the native API, the Go dialect and ``srun``'s ``/jobs`` agree
on what a job is: ids are strings (the Go client decodes them into strings and ``srun`` prints
them), instants are ISO 8601 or ``null``, and ``estimated_wait`` is nanoseconds (Go's
``time.Duration``). GPU indices are PCI order on the job's first node: what
``CUDA_VISIBLE_DEVICES`` counts in.
"""

from __future__ import annotations

from collections.abc import Sequence

from procplan.core.jobs import NO_BLOCKERS, REASON_TEXT, Job, JobState
from procplan.core.model import Topology
from procplan.core.timeutil import Instant
from procplan.wire.base import Json, iso_or_none

NS_PER_S = 1_000_000_000

__all__ = [
    "estimated_wait_ns",
    "gpu_indices",
    "heartbeat_json",
    "job_cancelled",
    "job_json",
    "job_status_json",
    "job_submitted",
    "jobs_page",
    "queue_position",
]


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
    return job.queue_position or 0


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


def _go_extras(job: Job) -> Json:
    extra = job.extra
    return {
        "cpu_cores": extra.get("cpu_cores"),
        "memory_mb": extra.get("memory_mb"),
        "image": extra.get("image"),
        "gang_scheduling": bool(extra.get("gang_scheduling", job.nodes > 1)),
    }


def _waits_for(job: Job) -> Json:
    """What a pending job waits for: job ids as strings (as ``id``), booking ids as numbers
    (as ``booking_id``); empty lists when nothing is known or it does not wait."""
    waits = job.waits_for if job.state is JobState.PENDING else NO_BLOCKERS
    return {"jobs": [str(j) for j in waits.jobs], "bookings": list(waits.bookings)}


def _placement(job: Job, topology: Topology, now: Instant) -> Json:
    """Where it runs, or why it waits and until when."""
    return {
        "node_name": _node_name(job, topology),
        "node_ids": list(job.node_ids),
        "allocated_gpus": list(job.gpu_ids) if job.gpu_ids else None,
        "gpu_indices": gpu_indices(job, topology),
        "reason": None if job.reason is None else job.reason.value,
        "reason_text": None if job.reason is None else REASON_TEXT[job.reason],
        "queue_position": queue_position(job),
        "estimated_start": iso_or_none(job.estimated_start),
        "estimated_wait": estimated_wait_ns(job, now),
        "waits_for": _waits_for(job),
        "borrowed": job.borrowed,
        "preempt_at": iso_or_none(job.preempt_at),
    }


def job_json(job: Job, topology: Topology, now: Instant, private: bool = True) -> Json:
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
        "submitted_at": iso_or_none(job.submitted_at),
        "started_at": iso_or_none(job.started_at),
        "completed_at": iso_or_none(job.ended_at),
        **_placement(job, topology, now),
        "exit_code": job.exit_code,
        "requeues": job.requeues,
        "preemptions": job.preemptions,
        "preempted_by": None if job.preempted_by is None else str(job.preempted_by),
        "command": list(job.command),
        "workdir": job.workdir,
        "env": dict(job.env) if private else None,
        "stdout": job.stdout_path,
        "stderr": job.stderr_path,
        "array_id": None if job.array_id is None else str(job.array_id),
        "array_index": job.array_index,
        "pid": job.pid,
        "host": job.host,
        "lease_expires_at": iso_or_none(job.lease_expires_at),
        "message": job.message,
        "version": job.version,
        **_go_extras(job),
        "job_id": str(job.id),
    }


def job_status_json(job: Job, topology: Topology, now: Instant, private: bool = True) -> Json:
    """``GET /api/v1/jobs/{id}``: the Go ``JobStatus`` keys first, then the full job."""
    full = job_json(job, topology, now, private)
    head = ("job_id", "state", "message", "allocated_gpus", "node_name", "queue_position")
    tail = ("estimated_wait", "reason", "estimated_start")
    return {key: full[key] for key in (*head, *tail)} | full


def heartbeat_json(job: Job) -> Json:
    """What a client renewing its lease needs: go on, stop (``preempt_at``), or it is over."""
    return {
        "state": job.state.value,
        "lease_expires_at": iso_or_none(job.lease_expires_at),
        "preempt_at": iso_or_none(job.preempt_at),
        "version": job.version,
    }


def job_submitted(first: Json, created: Sequence[Job], array: bool) -> Json:
    """The 201 answer of ``POST /api/v1/jobs``: the Go ``SubmitResponse`` keys and the first
    job (``first``: its ``job_json``); a job array adds every job's id and the array's id."""
    answer: Json = {
        "job_id": first["id"],
        "status": "submitted",
        "message": "Job submitted successfully",
        "job": first,
    }
    if array:
        answer["job_ids"] = [str(job.id) for job in created]
        array_id = created[0].array_id
        answer["array_id"] = None if array_id is None else str(array_id)
    return answer


def jobs_page(rendered: list[Json], total: int, truncated: bool) -> Json:
    """``GET /api/v1/jobs``: a page of ``job_json`` objects and the total; ``truncated`` when
    the page stopped short of the answer cap (the next starts at offset + len(jobs))."""
    page: Json = {"jobs": rendered, "total": total}
    if truncated:
        page["truncated"] = True
    return page


def job_cancelled(rendered: Json) -> Json:
    """The answer of ``DELETE /api/v1/jobs/{id}`` (the Go keys), with the job."""
    return {"message": "Job cancelled successfully", "job": rendered}
