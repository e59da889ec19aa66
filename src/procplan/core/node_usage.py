"""Who is using which GPU, and did they book it? (ADR 0006 §6) — pure.

Every GPU process an agent reports is matched against the running jobs and the bookings in
force: a process of a job on its own GPU is fine; anything else means the GPU is in use by
something the scheduler did not start (**foreign**: not handed out), and a process with
neither a job nor the user's booking behind it is flagged (next_cluster's "users without
booking").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from procplan.core.jobs import Job, JobKind
from procplan.core.model import Booking, Node
from procplan.core.node_reports import ReportedProcess
from procplan.core.readings import GpuReading

IDLE_UTILIZATION_PCT = 5.0


class ProcessKind(StrEnum):
    JOB = "job"  # a running job's process on a GPU the job holds
    STRAY = "stray"  # a running job's process on a GPU the job does not hold
    BOOKED = "booked"  # no job, but its user holds a booking of this GPU now
    UNBOOKED = "unbooked"  # neither a job nor a booking
    ENDING = "ending"  # a job's that just ended, still tearing down (``core.node_endings``)


class GpuFlag(StrEnum):
    UNBOOKED_USE = "unbooked_use"  # in use without a booking or a job
    IDLE_BOOKING = "idle_booking"  # booked now, but idle for a while
    IDLE_WARNED = "idle_warned"  # its booking was warned: released soon unless kept (ADR 0013)


@dataclass(frozen=True, slots=True)
class ClassifiedProcess:
    process: ReportedProcess
    gpu_id: str | None  # None: a GPU (or MIG uuid) the topology does not know
    kind: ProcessKind
    job_id: int | None


def uuid_index(node: Node, readings: Iterable[GpuReading]) -> dict[str, str]:
    """GPU id by device uuid, MIG instance uuids included (they map to their parent GPU)."""
    by_index = {gpu.index: gpu.id for gpu in node.gpus}
    found = {gpu.uuid: gpu.id for gpu in node.gpus if gpu.uuid}
    for reading in readings:
        gpu_id = by_index.get(reading.index)
        if gpu_id is not None:
            found.setdefault(reading.uuid, gpu_id)
    return found


def classify(
    processes: Sequence[ReportedProcess],
    gpu_of_uuid: Mapping[str, str],
    hostname: str,
    running: Sequence[Job],
    bookings_now: Sequence[Booking],
) -> list[ClassifiedProcess]:
    """Classify each process. ``running``: jobs running on this node; ``bookings_now``:
    active bookings of this node in force now; ``hostname``: the agent's host, which
    interactive jobs record as their client's host."""
    batch = {job.id: job for job in running if job.kind is JobKind.BATCH}
    clients = {
        job.pid: job
        for job in running
        if job.kind is JobKind.INTERACTIVE and job.pid is not None and job.host == hostname
    }
    booked_by = {(gpu, b.user) for b in bookings_now if b.is_active for gpu in b.gpu_ids}
    result = []
    for process in processes:
        gpu_id = gpu_of_uuid.get(process.gpu_uuid)
        job = _owner(process, batch, clients)
        if job is not None:
            kind = ProcessKind.JOB if gpu_id in job.gpu_ids else ProcessKind.STRAY
        elif gpu_id is not None and (gpu_id, process.user) in booked_by:
            kind = ProcessKind.BOOKED
        else:
            kind = ProcessKind.UNBOOKED
        result.append(ClassifiedProcess(process, gpu_id, kind, None if job is None else job.id))
    return result


def _owner(
    process: ReportedProcess, batch: Mapping[int, Job], clients: Mapping[int, Job]
) -> Job | None:
    if process.job_id is not None and process.job_id in batch:
        return batch[process.job_id]
    for pid in (process.pid, *process.ancestors):
        job = clients.get(pid)
        if job is not None:
            return job
    return None


def foreign_gpus(classified: Iterable[ClassifiedProcess]) -> set[str]:
    """GPUs running anything the scheduler did not start there (a job's processes, and those
    of a job that just ended, are not foreign)."""
    ours = (ProcessKind.JOB, ProcessKind.ENDING)
    return {c.gpu_id for c in classified if c.gpu_id is not None and c.kind not in ours}


def unbooked_gpus(classified: Iterable[ClassifiedProcess]) -> set[str]:
    """GPUs in use with neither a job nor a booking of the process's user behind it."""
    flagged = (ProcessKind.STRAY, ProcessKind.UNBOOKED)
    return {c.gpu_id for c in classified if c.gpu_id is not None and c.kind in flagged}


def is_idle(reading: GpuReading | None, has_processes: bool) -> bool:
    """No process and (nearly) no utilization: nobody is using the GPU."""
    if has_processes or reading is None or reading.utilization_pct is None:
        return False
    return reading.utilization_pct < IDLE_UTILIZATION_PCT
