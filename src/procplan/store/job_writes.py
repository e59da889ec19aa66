"""The job write paths other than the cycle's ``apply``: submit, finish, requeue, heartbeat.

Each is a ``work(conn)`` for the ``WriteBatcher``. Every one that changes what the scheduler
or a waiter sees bumps ``meta.jobs_version`` *first* and stamps the rows it writes with it:

- first, because on PostgreSQL that row lock then orders all job writers before any of them
  touches a job row (no two writers can hold rows the other wants), and a version becomes
  visible only after every smaller one committed;
- stamped, so that every process's ``JobMirror`` catches up by reading only changed rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, bindparam, case, select, update

from procplan.core.errors import NotFound
from procplan.core.fairshare import add_usage
from procplan.core.jobs import (
    NO_BLOCKERS,
    SPEC_FIELDS,
    Job,
    JobKind,
    JobSpec,
    JobState,
    JobStatus,
    Reason,
    StatusChange,
)
from procplan.core.lifecycle import check_transition
from procplan.core.notes import NoteKind, job_ended, job_preempted
from procplan.core.timeutil import Instant
from procplan.store.job_changes import StatusUpdate, write_change
from procplan.store.job_rows import (
    ACTIVE_STATES,
    GET_JOB,
    insert_values,
    row_to_job,
    submitted,
)
from procplan.store.logs_repo import tail_lines
from procplan.store.outbox import enqueue, listener
from procplan.store.tables import claims, jobs, meta, tenants
from procplan.store.users_repo import user_pk

JOBS_VERSION = select(meta.c.value).where(meta.c.key == "jobs_version")
_NEXT_JOBS_VERSION = (
    update(meta)
    .where(meta.c.key == "jobs_version")
    .values(value=meta.c.value + 1)
    .returning(meta.c.value)
)
# The jobs-version row, locked without a bump (PostgreSQL; SQLite already holds the write lock).
_LOCK_JOBS_VERSION = JOBS_VERSION.with_for_update()
_TENANT_PK = select(tenants.c.pk).where(tenants.c.id == bindparam("tenant_id"))
_INSERT_JOB = jobs.insert().returning(jobs.c.id)
_INSERT_JOBS = jobs.insert().returning(jobs.c.id, sort_by_parameter_order=True)
# Truncate, never extend: a claim that already ended (a job past its limit) keeps its end.
_END_CLAIMS = (
    update(claims)
    .where(claims.c.job_id == bindparam("j_id"))
    .where(claims.c.active.is_(True))
    .values(
        active=False,
        end_s=case((claims.c.end_s > bindparam("now"), bindparam("now")), else_=claims.c.end_s),
    )
)
_TENANT_USAGE = select(tenants.c.usage_gpu_s, tenants.c.usage_at).where(
    tenants.c.id == bindparam("tenant_id")
)
_HEARTBEAT = StatusUpdate(("lease_expires_at",), jobs.c.state.in_(ACTIVE_STATES))


def next_jobs_version(conn: Connection) -> int:
    """Bump ``jobs_version`` for this write and return it (see the module docstring)."""
    return int(conn.execute(_NEXT_JOBS_VERSION).scalar_one())


def load_job(conn: Connection, job_id: int) -> Job:
    """The job as stored, or ``NotFound`` (``unknown_job``)."""
    row = conn.execute(GET_JOB, {"job_id": job_id}).first()
    if row is None:
        raise NotFound(f"Job '{job_id}' does not exist", code="unknown_job")
    return row_to_job(row)


def tenant_pk(conn: Connection, tenant_id: str) -> int:
    pk = conn.execute(_TENANT_PK, {"tenant_id": tenant_id}).scalar()
    if pk is None:
        raise NotFound(f"Tenant '{tenant_id}' does not exist", code="unknown_tenant")
    return int(pk)


def submit_jobs(
    conn: Connection, new: Sequence[Job], now: Instant, known_users: dict[str, int]
) -> list[Job]:
    """Insert pending jobs in one transaction; an array (``array_index`` set on the first)
    shares ``array_id`` = the first job's id."""
    if not new:
        return []
    version = next_jobs_version(conn)
    keys = {(j.user, j.tenant) for j in new}
    pks = {(u, t): (user_pk(conn, u, now, known_users), tenant_pk(conn, t)) for u, t in keys}
    changes = [submitted(j, version) for j in new]
    rows = [
        insert_values(j, now, change, *pks[(j.user, j.tenant)])
        for j, change in zip(new, changes, strict=True)
    ]
    first_id = int(conn.execute(_INSERT_JOB, rows[0]).scalar_one())
    ids = [first_id]
    array_id = first_id if new[0].array_index is not None else None
    if array_id is not None:
        conn.execute(update(jobs).where(jobs.c.id == first_id).values(array_id=first_id))
    if len(rows) > 1:
        rest = [{**row, "array_id": array_id} for row in rows[1:]]
        ids += [int(r[0]) for r in conn.execute(_INSERT_JOBS, rest)]
    return [
        Job.of(jid, _asked(j, array_id, now), JobStatus(**change))
        for jid, j, change in zip(ids, new, changes, strict=True)
    ]


# The spec fields a submission brings: all but the last two, which the store assigns.
_ASKED: Callable[[Job], tuple[Any, ...]] = attrgetter(*SPEC_FIELDS[:-2])
if SPEC_FIELDS[-2:] != ("array_id", "submitted_at"):  # pragma: no cover - a layout guard
    raise TypeError("JobSpec must end with the fields the store assigns")


def _asked(job: Job, array_id: int | None, now: Instant) -> JobSpec:
    """What ``job`` asks for, submitted at ``now`` in array ``array_id``."""
    return JobSpec(*(*_ASKED(job), array_id, now))


def finish_job(
    conn: Connection,
    job_id: int,
    state: JobState,
    now: Instant,
    exit_code: int | None,
    message: str,
    half_life_s: int,
) -> Job:
    """End a job (transition checked), free its claims from ``now`` on, fold its GPU time
    into its tenant's decayed usage (fair-share)."""
    version = next_jobs_version(conn)
    job = load_job(conn, job_id)
    check_transition(job.id, job.state, state, job.kind)
    change: StatusChange = {
        "state": state, "ended_at": now, "exit_code": exit_code,
        "message": message or job.message, "lease_expires_at": None, "reason": None,
        "estimated_start": None, "queue_position": None, "waits_for": NO_BLOCKERS,
        "version": version,
    }  # fmt: skip
    ended = write_change(conn, job, change)
    conn.execute(_END_CLAIMS, {"j_id": job_id, "now": now})
    tail: list[str] = []  # a failed batch job's last log lines, read only for someone's note
    failed_batch = state is not JobState.COMPLETED and job.kind is JobKind.BATCH
    if failed_batch and listener(conn, NoteKind.JOB_FAILED, job.user)[0]:
        tail = tail_lines(conn, job_id, job.requeues)
    enqueue(conn, job_ended(ended, tail), now)
    if job.started_at is not None and job.gpu_count > 0:
        _fold_usage(
            conn, job.tenant, job.gpu_count * max(now - job.started_at, 0), now, half_life_s
        )
    return ended


def _fold_usage(
    conn: Connection, tenant_id: str, gpu_seconds: float, now: Instant, half_life_s: int
) -> None:
    row = conn.execute(_TENANT_USAGE, {"tenant_id": tenant_id}).first()
    if row is None:  # pragma: no cover - jobs reference their tenant
        return
    total = add_usage(float(row[0]), int(row[1]), gpu_seconds, now, half_life_s)
    conn.execute(
        update(tenants).where(tenants.c.id == tenant_id).values(usage_gpu_s=total, usage_at=now)
    )


def requeue_job(conn: Connection, job_id: int) -> Job:
    """A preempted or lost batch job goes back to the queue, allocation cleared: its nodes in
    the row; its GPUs are the finished run's claims (already inactive), and the next run
    (``requeues`` + 1) has none until it starts."""
    version = next_jobs_version(conn)
    job = load_job(conn, job_id)  # read under the jobs-version lock: ``requeues`` is current
    check_transition(job.id, job.state, JobState.PENDING, job.kind)
    change: StatusChange = {
        "state": JobState.PENDING, "requeues": job.requeues + 1, "started_at": None,
        "ended_at": None, "node_ids": (), "gpu_ids": (), "borrowed": False, "preempt_at": None,
        "reason": Reason.HELD, "estimated_start": None, "queue_position": None,
        "waits_for": NO_BLOCKERS, "exit_code": None, "pid": None, "host": None, "version": version,
    }  # fmt: skip
    requeued = write_change(conn, job, change, pid_started=None)
    enqueue(conn, job_preempted(requeued, job.message or "it stopped", True), job.ended_at or 0)
    return requeued


def heartbeat_job(conn: Connection, job_id: int, now: Instant, ttl_s: int) -> Job:
    """Extend the lease of a live interactive job; anything else is returned as it is.

    No version bump: a renewed lease changes nothing the scheduler or a waiter looks at, and
    clients renew every few seconds. The lease is read from the row (``expired_leases``). The
    version row is still locked first, like every job writer does (module docstring), so that
    a heartbeat batched with other writes cannot deadlock against the cycle's ``apply``.
    """
    conn.execute(_LOCK_JOBS_VERSION)
    job = load_job(conn, job_id)
    if job.state.is_finished or job.kind is not JobKind.INTERACTIVE:
        return job
    change: StatusChange = {"lease_expires_at": now + ttl_s}
    return _HEARTBEAT.write(conn, job, change) or job


def record_launch(
    conn: Connection, job_id: int, run: int, pid: int, host: str, at: float
) -> Job | None:
    """A node agent started run ``run`` of a running batch job as ``pid`` on ``host``: keep
    it (the agent's poll shows it as launched, so a restarted agent does not start it twice).
    ``None`` when the job is no longer running that run (acknowledged and ignored)."""
    version = next_jobs_version(conn)
    job = load_job(conn, job_id)
    if job.state is not JobState.RUNNING or job.requeues != run or job.kind is not JobKind.BATCH:
        return None
    if job.pid == pid and job.host == host:
        return job
    change: StatusChange = {"pid": pid, "host": host, "version": version}
    return write_change(conn, job, change, pid_started=at)
