"""Job rows ⇄ ``core.jobs.Job``: the one SELECT shape every job read uses, and the one mapping
of status fields to columns (``row_values``) every job write uses.

A job row keeps its user and tenant as keys; reads join their names in, so a ``Job`` is
complete on its own. Lists (command, env, nodes of the allocation) are stored as text: JSON for
what users write, GPU_ID_SEPARATOR-joined ids for what the scheduler writes (cheap to split).
The allocation's GPUs are not in the row: they are the job's claims of its current run
(``claims.run = jobs.requeues``), in position order, which ``job_apply`` writes when the job
starts (``CLAIMED_FIELDS``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

from sqlalchemy import Select, bindparam, select

from procplan.core.jobs import (
    NO_BLOCKERS,
    STATUS_FIELDS,
    Blockers,
    Job,
    JobKind,
    JobState,
    Reason,
    StatusChange,
)
from procplan.core.timeutil import Instant
from procplan.store.claimed import claimed_gpus, split_claimed
from procplan.store.tables import GPU_ID_SEPARATOR, claims, jobs, tenants, users

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
    claimed_gpus(claims.c.job_id == jobs.c.id, claims.c.run == jobs.c.requeues),
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
    jobs.c.preemptions,
    jobs.c.preempted_by,
    jobs.c.last_preempted_at,
    jobs.c.waits_for,
    jobs.c.version,  # the last two: ``JobMirror`` reads them by position
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
    """One row of ``job_select`` as a Job."""
    (jid, user, tenant, kind, name, state, priority, gpu_count, nodes, gpu_kind, gpu_mem,
     limit, node_id, booking_id, submitted, started, ended, alloc_nodes, claimed, borrowed,
     preempt_at, reason, estimate, exit_code, requeues, command, workdir, env, stdout, stderr,
     array_id, array_index, pid, host, lease, message, extra, preemptions, preempted_by,
     last_preempted_at, waits_for, version, position) = row  # fmt: skip
    extra_map: dict[str, object] = json.loads(extra) if extra and extra != "{}" else {}
    return Job(
        id=jid, user=user, tenant=tenant, kind=_KINDS[kind], name=name, state=_STATES[state],
        priority=priority, gpu_count=gpu_count, nodes=nodes, gpu_kind=gpu_kind,
        gpu_memory_mb=gpu_mem, time_limit_s=limit, node_id=node_id, booking_id=booking_id,
        submitted_at=submitted, started_at=started, ended_at=ended,
        node_ids=split_ids(alloc_nodes), gpu_ids=split_claimed(claimed), borrowed=bool(borrowed),
        preempt_at=preempt_at, reason=None if reason is None else _REASONS[reason],
        estimated_start=estimate, queue_position=position, exit_code=exit_code, requeues=requeues,
        command=tuple(json.loads(command)) if command != "[]" else (), workdir=workdir,
        env=tuple((k, v) for k, v in json.loads(env)) if env != "[]" else (),
        stdout_path=stdout, stderr_path=stderr, array_id=array_id, array_index=array_index,
        pid=pid, host=host, lease_expires_at=lease, message=message, extra=extra_map,
        version=version, preemptions=preemptions, preempted_by=preempted_by,
        last_preempted_at=last_preempted_at, waits_for=decode_blockers(waits_for),
    )  # fmt: skip


def encode_blockers(blockers: Blockers) -> str | None:
    """``waits_for`` as stored: JSON with the two id lists, NULL when nothing is known."""
    if blockers == NO_BLOCKERS:
        return None
    return json.dumps({"jobs": blockers.jobs, "bookings": blockers.bookings})


def decode_blockers(text: str | None) -> Blockers:
    if not text:
        return NO_BLOCKERS
    stored = json.loads(text)
    return Blockers(tuple(stored.get("jobs", ())), tuple(stored.get("bookings", ())))


def _pid_started(extra: Mapping[str, object]) -> float | None:
    value = extra.get("pid_started")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _value(member: Enum | None) -> object:
    return None if member is None else member.value


# Status fields stored as claims, not columns: the allocation's GPUs (claims of the current
# run, ``claims.run = requeues``). Only a start writes them (``job_apply._start`` inserts the
# claims); a requeue's ``gpu_ids = ()`` needs no write, since the new run has no claims yet.
CLAIMED_FIELDS = frozenset({"gpu_ids"})
# How each other status field is stored: its column and its encoder (``None``: stored as it
# is). Enums are stored as their values, the allocation's nodes as ``GPU_ID_SEPARATOR``-joined
# ids.
_COLUMNS = {"node_ids": "alloc_nodes"}
_ENCODERS: dict[str, Callable[[Any], object]] = {
    "state": _value, "reason": _value, "node_ids": join_ids, "waits_for": encode_blockers,
}  # fmt: skip
STATUS_COLUMNS: Mapping[str, tuple[str, Callable[[Any], object] | None]] = {
    name: (_COLUMNS.get(name, name), _ENCODERS.get(name))
    for name in STATUS_FIELDS
    if name not in CLAIMED_FIELDS
}


def row_values(change: Mapping[str, Any]) -> dict[str, Any]:
    """The column values of status fields (a ``StatusChange``, or a whole status): the one
    mapping of status to columns (``STATUS_COLUMNS``); ``CLAIMED_FIELDS`` have no column and
    are left out. ``KeyError`` on any other field."""
    values: dict[str, Any] = {}
    for name, value in change.items():
        if name in CLAIMED_FIELDS:
            continue
        column, encode = STATUS_COLUMNS[name]
        values[column] = value if encode is None else encode(value)
    return values


def submitted(job: Job, version: int) -> StatusChange:
    """A submitted job's status, as a change from ``JobStatus()``: pending, held until a
    cycle looks at it; a client's PID, host and lease and a message come with the request.
    The fields it leaves out keep their defaults, which are the columns' defaults too."""
    return {
        "state": JobState.PENDING, "reason": Reason.HELD, "borrowed": False, "requeues": 0,
        "pid": job.pid, "host": job.host, "lease_expires_at": job.lease_expires_at,
        "message": job.message, "version": version,
    }  # fmt: skip


def insert_values(
    asked: Job, now: Instant, status: StatusChange, user_pk: int, tenant_pk: int
) -> dict[str, object]:
    """The row of a job submitted at ``now`` (the database assigns its id; ``array_id`` is
    set apart): the spec fields ``asked`` for, and the status columns of ``status``
    (``submitted``)."""
    values: dict[str, object] = {
        "user_pk": user_pk,
        "tenant_pk": tenant_pk,
        "kind": asked.kind.value,
        "name": asked.name,
        "priority": asked.priority,
        "gpu_count": asked.gpu_count,
        "nodes": asked.nodes,
        "gpu_kind": asked.gpu_kind,
        "gpu_memory_mb": asked.gpu_memory_mb,
        "time_limit_s": asked.time_limit_s,
        "node_id": asked.node_id,
        "booking_id": asked.booking_id,
        "submitted_at": now,
        "command": json.dumps(list(asked.command)),
        "workdir": asked.workdir,
        "env": json.dumps([list(pair) for pair in asked.env]),
        "stdout_path": asked.stdout_path,
        "stderr_path": asked.stderr_path,
        "array_id": None,
        "array_index": asked.array_index,
        "pid_started": _pid_started(asked.extra),
        "extra": json.dumps(dict(asked.extra), default=str),
    }
    values.update(row_values(status))
    return values
