"""Job rows ⇄ ``core.jobs.Job``: the one SELECT shape every job read uses.

A job row keeps its user and tenant as keys; reads join their names in, so a ``Job`` is
complete on its own. Lists (command, env, allocation) are stored as text: JSON for what users
write, GPU_ID_SEPARATOR-joined ids for what the scheduler writes (cheap to split).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, select

from procplan.core.jobs import Job, JobKind, JobState, Reason
from procplan.core.timeutil import Instant
from procplan.store.tables import GPU_ID_SEPARATOR, jobs, tenants, users

# ``core.jobs.Job`` has no queue position field; reads put it (when known) in ``extra`` under
# this key so that the APIs can show it. Nothing writes it back from there.
QUEUE_POSITION = "queue_position"

_STATES = {s.value: s for s in JobState}
_KINDS = {k.value: k for k in JobKind}
_REASONS = {r.value: r for r in Reason}
ACTIVE_STATES = (JobState.PENDING.value, JobState.RUNNING.value)

JOB_COLUMNS = (
    jobs.c.id,
    users.c.name,
    tenants.c.id,
    jobs.c.kind,
    jobs.c.name,
    jobs.c.state,
    jobs.c.priority,
    jobs.c.gpu_count,
    jobs.c.nodes,
    jobs.c.gpu_kind,
    jobs.c.gpu_memory_mb,
    jobs.c.time_limit_s,
    jobs.c.node_id,
    jobs.c.booking_id,
    jobs.c.submitted_at,
    jobs.c.started_at,
    jobs.c.ended_at,
    jobs.c.alloc_nodes,
    jobs.c.alloc_gpus,
    jobs.c.borrowed,
    jobs.c.preempt_at,
    jobs.c.reason,
    jobs.c.estimated_start,
    jobs.c.exit_code,
    jobs.c.requeues,
    jobs.c.command,
    jobs.c.workdir,
    jobs.c.env,
    jobs.c.stdout_path,
    jobs.c.stderr_path,
    jobs.c.array_id,
    jobs.c.array_index,
    jobs.c.pid,
    jobs.c.host,
    jobs.c.lease_expires_at,
    jobs.c.message,
    jobs.c.extra,
    jobs.c.version,
    jobs.c.queue_position,
)


def job_select() -> Select[Any]:
    """Jobs joined with their user and tenant names, in ``row_to_job`` order."""
    return select(*JOB_COLUMNS).join_from(jobs, users).join(tenants)


GET_JOB = job_select().where(jobs.c.id == bindparam("job_id"))
# Rows written after ``:after`` (the jobs version a reader has).
CHANGED_SINCE = job_select().where(jobs.c.version > bindparam("after"))
ACTIVE_JOBS = job_select().where(jobs.c.state.in_(ACTIVE_STATES))


def split_ids(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(GPU_ID_SEPARATOR)) if text else ()


def join_ids(ids: Sequence[str]) -> str | None:
    return GPU_ID_SEPARATOR.join(ids) if ids else None


def row_to_job(row: Sequence[Any]) -> Job:
    """One row of ``job_select`` as a Job; the queue position goes into ``extra``."""
    (jid, user, tenant, kind, name, state, priority, gpu_count, nodes, gpu_kind, gpu_mem,
     limit, node_id, booking_id, submitted, started, ended, alloc_nodes, alloc_gpus, borrowed,
     preempt_at, reason, estimate, exit_code, requeues, command, workdir, env, stdout, stderr,
     array_id, array_index, pid, host, lease, message, extra, version, position) = row  # fmt: skip
    extra_map: dict[str, object] = json.loads(extra) if extra and extra != "{}" else {}
    if position is not None:
        extra_map[QUEUE_POSITION] = position
    return Job(
        id=jid, user=user, tenant=tenant, kind=_KINDS[kind], name=name, state=_STATES[state],
        priority=priority, gpu_count=gpu_count, nodes=nodes, gpu_kind=gpu_kind,
        gpu_memory_mb=gpu_mem, time_limit_s=limit, node_id=node_id, booking_id=booking_id,
        submitted_at=submitted, started_at=started, ended_at=ended,
        node_ids=split_ids(alloc_nodes), gpu_ids=split_ids(alloc_gpus), borrowed=bool(borrowed),
        preempt_at=preempt_at, reason=None if reason is None else _REASONS[reason],
        estimated_start=estimate, exit_code=exit_code, requeues=requeues,
        command=tuple(json.loads(command)) if command != "[]" else (), workdir=workdir,
        env=tuple((k, v) for k, v in json.loads(env)) if env != "[]" else (),
        stdout_path=stdout, stderr_path=stderr, array_id=array_id, array_index=array_index,
        pid=pid, host=host, lease_expires_at=lease, message=message, extra=extra_map,
        version=version,
    )  # fmt: skip


def _pid_started(extra: Mapping[str, object]) -> float | None:
    value = extra.get("pid_started")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def insert_values(
    job: Job, user_pk: int, tenant_pk: int, version: int, now: Instant
) -> dict[str, object]:
    """The row of a new pending job (``job.id`` is ignored: the database assigns it)."""
    extra = {k: v for k, v in job.extra.items() if k != QUEUE_POSITION}
    return {
        "user_pk": user_pk,
        "tenant_pk": tenant_pk,
        "kind": job.kind.value,
        "name": job.name,
        "state": JobState.PENDING.value,
        "priority": job.priority,
        "gpu_count": job.gpu_count,
        "nodes": job.nodes,
        "gpu_kind": job.gpu_kind,
        "gpu_memory_mb": job.gpu_memory_mb,
        "time_limit_s": job.time_limit_s,
        "node_id": job.node_id,
        "booking_id": job.booking_id,
        "submitted_at": now,
        "borrowed": False,
        "reason": Reason.HELD.value,
        "requeues": 0,
        "command": json.dumps(list(job.command)),
        "workdir": job.workdir,
        "env": json.dumps([list(pair) for pair in job.env]),
        "stdout_path": job.stdout_path,
        "stderr_path": job.stderr_path,
        "array_id": job.array_id,
        "array_index": job.array_index,
        "pid": job.pid,
        "host": job.host,
        "pid_started": _pid_started(job.extra),
        "lease_expires_at": job.lease_expires_at,
        "message": job.message,
        "extra": json.dumps(extra, default=str),
        "version": version,
    }
