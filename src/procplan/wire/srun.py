"""local-gpu-scheduler's shapes (COMPAT.md §2), so its unmodified ``srun`` works against us:
``POST /acquire``, ``GET /status`` and ``GET /jobs``. Errors keep that server's
``{"error": ...}`` shape (``api.responses``)."""

from __future__ import annotations

from collections.abc import Iterable

from procplan.core.jobs import Job, JobState
from procplan.core.model import Topology
from procplan.core.views import LocalStatus
from procplan.wire.base import Json
from procplan.wire.jobs import gpu_indices

__all__ = ["NO_GPUS", "SERVICE_NAME", "SRUN_STATUS", "acquired", "srun_jobs", "srun_status"]

SERVICE_NAME = "local-gpu-scheduler"  # its tooling probes this exact string
NO_GPUS = "-1"  # CUDA_VISIBLE_DEVICES that hides every GPU (the client rejects "")

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


def acquired(job: Job, topology: Topology) -> Json:
    """``POST /acquire``'s answer: the job id and its GPUs as ``CUDA_VISIBLE_DEVICES`` (PCI
    indices on this host; ``-1`` for a job without GPUs)."""
    indices = gpu_indices(job, topology)
    gpus = ",".join(str(i) for i in indices) if indices else NO_GPUS
    return {"job_id": str(job.id), "gpus": gpus}


def srun_status(version: str, uptime_s: int, port: int, local: LocalStatus) -> Json:
    """``GET /status``: the server's identity and uptime, then this host's GPU and queue
    counters (``local``: ``JobService.local_status``)."""
    return {
        "service": SERVICE_NAME,
        "version": version,
        "uptime_s": uptime_s,
        "port": port,
        "gpus_total": local.gpus_total,
        "gpus_allocated": list(local.gpus_allocated),
        "jobs_running": local.jobs_running,
        "jobs_queued": local.jobs_queued,
        "jobs_total": local.jobs_total,
        "node_id": local.node_id,
    }


def _srun_job(job: Job, topology: Topology) -> Json:
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


def srun_jobs(jobs: Iterable[Job], topology: Topology) -> list[Json]:
    """``GET /jobs``: local-gpu-scheduler's job entries (COMPAT §2), plus a few extras."""
    return [_srun_job(job, topology) for job in jobs]
