"""Writing a cycle's plan: starts re-checked against the ledger, in one write transaction.

The planner worked on a snapshot; by the time its plan is written a booking may have been
made, a job cancelled, a GPU retired. So each start is re-checked here, under the write lock
(SQLite) or the jobs-version row lock plus the per-node advisory locks that booking writes
take (PostgreSQL): the job must still be pending, its GPUs active, free of other jobs' claims
over ``[now, claim_end)`` and of foreign bookings (for an open-ended job: bookings active now;
ledger rule 3) — the pure ``core.ledger.judge`` decides. A start that fails is skipped and the
cycle plans again.

Pending jobs' reasons, positions and estimates are written only where they changed, so a
cycle over 10,000 waiting jobs usually writes a handful of rows, and a cycle that changes
nothing bumps no version (its transaction is rolled back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.exc import IntegrityError

from procplan.core.jobs import (
    NO_BLOCKERS,
    OPEN_END,
    Job,
    JobKind,
    JobState,
    Plan,
    Preemption,
    Start,
    StatusChange,
)
from procplan.core.ledger import Ask, Hold, Holder, judge
from procplan.core.notes import ESTIMATE_MOVED_S, estimate_moved, job_preempted, job_started
from procplan.core.timeutil import Instant
from procplan.store.engine import Store
from procplan.store.job_changes import StatusUpdate
from procplan.store.job_mirror import Info, JobMirror
from procplan.store.job_writes import next_jobs_version
from procplan.store.ledger_holds import read_holds
from procplan.store.outbox import enqueue
from procplan.store.tables import claims, gpus, jobs, nodes


@dataclass(slots=True)
class ApplyResult:
    """What ``apply`` wrote: ``skipped`` starts no longer fit (plan again when non-empty)."""

    started: list[Job] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    preempted: list[Job] = field(default_factory=list)
    changed: bool = False


_ACTIVE_GPUS = (
    select(gpus.c.id, gpus.c.pk, gpus.c.node_pk, nodes.c.id)
    .join_from(gpus, nodes)
    .where(gpus.c.id.in_(bindparam("gpu_ids", expanding=True)))
    .where(gpus.c.retired.is_(False))
    .where(nodes.c.retired.is_(False))
)
# Built once (building a statement per call cost more than executing it); the bind values
# come from each change (``job_changes``).
_START = StatusUpdate(
    (
        "state", "started_at", "node_ids", "gpu_ids", "borrowed", "lease_expires_at", "reason",
        "estimated_start", "queue_position", "waits_for", "version",
    ),
    jobs.c.state == JobState.PENDING.value,
)  # fmt: skip
_INSERT_CLAIMS = claims.insert()
_PREEMPT = StatusUpdate(
    ("preempt_at", "message", "version", "preemptions", "preempted_by", "last_preempted_at"),
    jobs.c.state == JobState.RUNNING.value,
    jobs.c.preempt_at.is_(None),
)
_PENDING_INFO = StatusUpdate(
    ("reason", "estimated_start", "queue_position", "waits_for", "version"),
    jobs.c.state == JobState.PENDING.value,
)


class _NothingChanged(Exception):
    """Roll back the version bump: the plan wrote nothing."""

    def __init__(self, skipped: list[int]) -> None:
        super().__init__("nothing to write")
        self.skipped = skipped


def apply_plan(
    store: Store,
    mirror: JobMirror,
    plan: Plan,
    now: Instant,
    lease_ttl_s: int,
    all_positions: bool = True,
) -> ApplyResult:
    """Write ``plan`` in one transaction; see the module docstring (and
    ``JobMirror.changed_pending`` for ``all_positions``)."""
    mirror.sync()
    seen = mirror.version
    written = mirror.changed_pending(plan.pending, all_positions=all_positions)
    if not (written or plan.starts or _preemptions(mirror.jobs(), plan)):
        return ApplyResult()  # the usual tick: nothing to write, no write lock taken
    try:
        with store.write() as conn:
            version = next_jobs_version(conn)
            mirror.sync_with(conn, version - 1)  # exact: every older version is committed
            if mirror.version != seen:  # someone wrote in between: compare again
                written = mirror.changed_pending(plan.pending, all_positions=all_positions)
            result = _write(conn, store, plan, mirror.jobs(), written, now, lease_ttl_s, version)
            _estimates_moved(conn, mirror, written, now)
    except _NothingChanged as nothing:
        return ApplyResult(skipped=nothing.skipped)
    mirror.note_pending(version, written)
    return result


def _estimates_moved(
    conn: Connection, mirror: JobMirror, written: Mapping[int, Info], now: Instant
) -> None:
    """Tell the owners of queued jobs whose estimated start moved by ``ESTIMATE_MOVED_S`` or
    more (from one known estimate to another), with the write that moves it."""
    jobs = mirror.jobs()
    for job_id, (_, estimate, _, _) in written.items():
        old = mirror.pending_info(job_id)
        job = jobs.get(job_id)
        if old is None or old[1] is None or estimate is None or job is None:
            continue
        if abs(estimate - old[1]) >= ESTIMATE_MOVED_S:
            enqueue(conn, estimate_moved(job, old[1], estimate), now)


def _preemptions(live: Mapping[int, Job], plan: Plan) -> list[Preemption]:
    """Planned preemptions of running jobs not already told to stop."""
    return [p for p in plan.preemptions if _preemptable(live.get(p.job_id))]


def _preemptable(job: Job | None) -> bool:
    return job is not None and job.state is JobState.RUNNING and job.preempt_at is None


def _write(
    conn: Connection,
    store: Store,
    plan: Plan,
    live: Mapping[int, Job],
    pending: dict[int, Info],
    now: Instant,
    lease_ttl_s: int,
    version: int,
) -> ApplyResult:
    accepted, skipped = _check_starts(conn, store, plan.starts, live, now)
    for start, _ in accepted:  # a started job's row is no longer a pending row
        pending.pop(start.job_id, None)
    preempts = _preemptions(live, plan)
    if not (accepted or preempts or pending):
        raise _NothingChanged(skipped)
    started: list[Job] = []
    for start, gpu_pks in accepted:
        job = _start(conn, live[start.job_id], start, gpu_pks, now, lease_ttl_s, version)
        if job is None:
            skipped.append(start.job_id)
        else:
            started.append(job)
    preempted = _preempt(conn, preempts, live, now, version)
    if pending:
        conn.execute(
            _PENDING_INFO.statement,
            [
                _PENDING_INFO.params(j, _pending_change(info, version))
                for j, info in pending.items()
            ],
        )
    return ApplyResult(started, skipped, preempted, True)


def _pending_change(info: Info, version: int) -> StatusChange:
    reason, estimate, position, waits = info
    return {
        "reason": reason, "estimated_start": estimate, "queue_position": position,
        "waits_for": waits, "version": version,
    }  # fmt: skip


# ---- starts ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Ledger:
    """What a start could collide with: the active GPUs it names and their holds."""

    gpu: dict[str, tuple[int, int, str]]  # GPU id -> (pk, node pk, node id), active GPUs only
    holds: dict[str, list[Hold]]  # GPU id -> active claims from now on (``read_holds``)


def _check_starts(
    conn: Connection, store: Store, starts: Sequence[Start], live: Mapping[int, Job], now: Instant
) -> tuple[list[tuple[Start, list[int]]], list[int]]:
    """Split starts into those that still fit (with their GPU keys) and skipped job ids."""
    skipped = [s.job_id for s in starts if not _still_pending(live.get(s.job_id))]
    candidates = [s for s in starts if _still_pending(live.get(s.job_id))]
    if not candidates:
        return [], skipped
    until = max(s.claim_end for s in candidates)
    ledger = _read_ledger(conn, store, {g for s in candidates for g in s.gpu_ids}, now, until)
    accepted: list[tuple[Start, list[int]]] = []
    for start in candidates:
        job = live[start.job_id]
        gpu_pks = _fits(start, job, ledger, now)
        if gpu_pks is None:
            skipped.append(start.job_id)
            continue
        accepted.append((start, gpu_pks))
        for gpu_id in start.gpu_ids:  # later starts of this plan must not take these GPUs too
            hold = Hold(Holder.JOB, job.id, job.user, gpu_id, now, start.claim_end)
            ledger.holds[gpu_id].append(hold)
    return accepted, skipped


def _still_pending(job: Job | None) -> bool:
    return job is not None and job.state is JobState.PENDING


def _read_ledger(
    conn: Connection, store: Store, gpu_ids: Iterable[str], now: Instant, until: Instant
) -> _Ledger:
    wanted = sorted(gpu_ids)
    gpu = {
        gid: (int(pk), int(node_pk), str(node_id))
        for gid, pk, node_pk, node_id in conn.execute(_ACTIVE_GPUS, {"gpu_ids": wanted})
    }
    if not store.is_sqlite:  # the lock booking writes take: serialise with them per node
        for node_pk in sorted({node_pk for _, node_pk, _ in gpu.values()}):
            conn.execute(text("SELECT pg_advisory_xact_lock(1, :node)"), {"node": node_pk})
    holds = read_holds(conn, {gid: pk for gid, (pk, _, _) in gpu.items()}, now, until)
    return _Ledger(gpu, holds)


def _fits(start: Start, job: Job, ledger: _Ledger, now: Instant) -> list[int] | None:
    """The GPU keys of a start that still fits (``core.ledger.judge`` on each GPU), else
    ``None``. A batch job must name a node even without GPUs (a CPU-only job): its node's
    agent is what runs it."""
    if len(set(start.gpu_ids)) != len(start.gpu_ids) or len(start.gpu_ids) != job.gpu_count:
        return None
    if job.kind is JobKind.BATCH and not start.node_ids:
        return None
    length = None if start.claim_end >= OPEN_END else start.claim_end - now
    ask = Ask.job(job.user, now, length, job.booking_id)
    pks: list[int] = []
    for gpu_id in start.gpu_ids:
        found = ledger.gpu.get(gpu_id)
        if found is None or found[2] not in start.node_ids:
            return None
        if not judge(ask, ledger.holds[gpu_id]).ok:
            return None
        pks.append(found[0])
    return pks


def _start(
    conn: Connection,
    job: Job,
    start: Start,
    gpu_pks: list[int],
    now: Instant,
    lease_ttl_s: int,
    version: int,
) -> Job | None:
    """Mark the job running and insert its claims, the only record of its GPUs: in the
    start's order (``position``), for this run (``run`` = ``requeues``). In a savepoint: an
    exclusion-constraint refusal on PostgreSQL skips this start only."""
    change: StatusChange = {
        "state": JobState.RUNNING, "started_at": now, "node_ids": start.node_ids,
        "gpu_ids": start.gpu_ids, "borrowed": start.borrowed,
        "lease_expires_at": (
            now + lease_ttl_s if job.kind is JobKind.INTERACTIVE else job.lease_expires_at
        ),
        "reason": None, "estimated_start": None, "queue_position": None,
        "waits_for": NO_BLOCKERS, "version": version,
    }  # fmt: skip
    try:
        with conn.begin_nested():
            started = _START.write(conn, job, change)
            if started is None:
                return None
            if gpu_pks:
                conn.execute(
                    _INSERT_CLAIMS,
                    [
                        {"job_id": job.id, "gpu_pk": pk, "start_s": now, "end_s": start.claim_end}
                        | {"active": True, "booking_id": None, "position": position}
                        | {"run": job.requeues}
                        for position, pk in enumerate(gpu_pks)
                    ],
                )
    except IntegrityError:
        return None
    enqueue(conn, job_started(started, now), now)
    return started


def _preempt(
    conn: Connection,
    preempts: Sequence[Preemption],
    live: Mapping[int, Job],
    now: Instant,
    version: int,
) -> list[Job]:
    """Mark the victims (once: a job already being preempted keeps its first deadline), and
    keep their preemption history: one more preemption, for whom and when (ADR 0011)."""
    done: list[Job] = []
    for p in preempts:
        job = live[p.job_id]
        change: StatusChange = {
            "preempt_at": now, "message": p.reason, "version": version,
            "preemptions": job.preemptions + 1, "preempted_by": p.for_job_id,
            "last_preempted_at": now,
        }  # fmt: skip
        victim = _PREEMPT.write(conn, job, change)
        if victim is not None:
            done.append(victim)
            enqueue(conn, job_preempted(victim, p.reason, False), now)
    return done
