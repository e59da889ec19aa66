"""The job side of the store: submissions, the cycle's snapshot and apply, job endings.

Reads of one job or a page go to the database; the cycle's reads (``snapshot``, leases,
watched PIDs, preemption deadlines) come from the in-memory ``JobMirror``, synced to the last
commit first. Writes go through a group-commit ``WriteBatcher``, except ``apply``, which runs
alone in its own transaction (``job_apply``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, func, or_, select

from procplan.core.fairshare import decayed
from procplan.core.jobs import OPEN_END, Job, JobKind, JobState, NodeState, Plan, Policy, Snapshot
from procplan.core.model import Booking, Topology
from procplan.core.timeutil import DAY, Instant
from procplan.store.engine import Store
from procplan.store.job_apply import ApplyResult, apply_plan
from procplan.store.job_mirror import JobMirror
from procplan.store.job_rows import ACTIVE_STATES, GET_JOB, job_select, row_to_job
from procplan.store.job_writes import (
    JOBS_VERSION,
    finish_job,
    heartbeat_job,
    load_job,
    record_launch,
    requeue_job,
    submit_jobs,
)
from procplan.store.ledger_mirror import BookingMirror
from procplan.store.tables import GPU_ID_SEPARATOR, jobs, tenants, users
from procplan.store.write_batcher import WriteBatcher

__all__ = ["ApplyResult", "JobFilter", "JobStore"]


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Filters of the list routes; ``None`` means no filter on that field."""

    user: str | None = None
    tenant: str | None = None
    states: frozenset[JobState] | None = None
    kind: JobKind | None = None
    node_id: str | None = None
    limit: int = 50
    offset: int = 0


class JobStore:
    """See the module docstring. ``bookings`` is the booking mirror to share (one per process
    is enough); ``half_life_s`` decays tenant usage when jobs end (fair-share)."""

    def __init__(
        self, store: Store, bookings: BookingMirror | None = None, half_life_s: int = DAY
    ) -> None:
        self.store = store
        self.writes = WriteBatcher(store)
        self.mirror = JobMirror(store)
        self.bookings = bookings if bookings is not None else BookingMirror(store)
        self.half_life_s = half_life_s
        self._user_pks: dict[str, int] = {}
        # Active bookings ending after ``as_of``, by end, for the ledger version they came from.
        self._booked: tuple[int, Instant, list[Instant], tuple[Booking, ...]] | None = None

    # ---- reads -------------------------------------------------------------------------

    def version(self) -> int:
        """The committed ``jobs_version``: moves on every job or tenant write, any process."""
        return int(self.store.peek(JOBS_VERSION))

    def get(self, job_id: int) -> Job | None:
        with self.store.read() as conn:
            row = conn.execute(GET_JOB, {"job_id": job_id}).first()
        return None if row is None else row_to_job(row)

    def page(self, flt: JobFilter) -> tuple[list[Job], int]:
        """A filtered page of jobs, newest first, and the total count."""
        query = _filtered(job_select(), flt)
        with self.store.read() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            return self._rows(conn, query, flt), int(total)

    def rows(self, flt: JobFilter) -> list[Job]:
        """``page`` without the count: for reading one page in several parts."""
        with self.store.read() as conn:
            return self._rows(conn, _filtered(job_select(), flt), flt)

    @staticmethod
    def _rows(conn: Connection, query: Select[Any], flt: JobFilter) -> list[Job]:
        rows = conn.execute(query.order_by(jobs.c.id.desc()).limit(flt.limit).offset(flt.offset))
        return [row_to_job(row) for row in rows]

    def count_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state (all of history)."""
        with self.store.read() as conn:
            rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
            return {JobState(state): int(n) for state, n in rows}

    def active(self) -> tuple[tuple[Job, ...], tuple[Job, ...]]:
        """``(pending, running)`` as of the last commit, from the mirror."""
        self.mirror.sync()
        return self.mirror.queue()

    def active_version(self) -> int:
        """The ``jobs_version`` the mirror was last synced to: what ``active`` last answered
        as of (-1 before the first)."""
        return self.mirror.version

    def snapshot(
        self,
        now: Instant,
        topology: Topology,
        policy: Policy,
        *,
        node_states: Mapping[str, NodeState] | None = None,
        foreign_gpus: frozenset[str] = frozenset(),
        batch_nodes: frozenset[str] | None = None,
    ) -> Snapshot:
        """What the planner reads: the queue, bookings from ``now`` on, tenants, usage, and
        the caller's view of the nodes (states, foreign GPUs, batch nodes)."""
        self.mirror.sync()
        pending, running = self.mirror.queue()
        tenant_rows = self.mirror.tenants()
        return Snapshot(
            topology=topology,
            bookings=self._active_bookings(now),
            running=running,
            pending=pending,
            tenants={t.id: t for t, _, _ in tenant_rows},
            usage={t.id: decayed(u, at, now, policy.half_life_s) for t, u, at in tenant_rows},
            foreign_gpus=foreign_gpus,
            node_states=node_states if node_states is not None else {},
            batch_nodes=batch_nodes,
        )

    def _active_bookings(self, now: Instant) -> tuple[Booking, ...]:
        """Active bookings that end after ``now``, ordered by end. Kept per ledger version and
        sliced per call: the cycle snapshots several times a second, bookings change rarely."""
        index = self.bookings.sync_active()
        version = self.bookings.version
        cached = self._booked
        if cached is None or cached[0] != version or now < cached[1]:
            found = [b for node in index.values() for b in node.overlapping(now, OPEN_END)]
            found.sort(key=lambda b: (b.end, b.id))
            cached = (version, now, [b.end for b in found], tuple(found))
            self._booked = cached
        return cached[3][bisect_right(cached[2], now) :]

    def expired_leases(self, now: Instant) -> list[Job]:
        """Unfinished interactive jobs whose lease lapsed (read from the rows: heartbeats do
        not go through the mirror)."""
        query = (
            job_select()
            .where(jobs.c.lease_expires_at < now)
            .where(jobs.c.state.in_(ACTIVE_STATES))
            .where(jobs.c.kind == JobKind.INTERACTIVE.value)
            .order_by(jobs.c.id)
        )
        with self.store.read() as conn:
            return [row_to_job(row) for row in conn.execute(query)]

    def watched(self, host: str) -> list[Job]:
        """Unfinished interactive jobs whose client PID runs on ``host``."""
        pending, running = self.active()
        return [
            j
            for j in (*running, *pending)
            if j.kind is JobKind.INTERACTIVE and j.pid is not None and j.host == host
        ]

    def overdue_preemptions(self, now: Instant, grace_s: int) -> list[Job]:
        """Running jobs told to stop at least ``grace_s`` ago."""
        _, running = self.active()
        return [j for j in running if j.preempt_at is not None and j.preempt_at + grace_s <= now]

    # ---- writes ------------------------------------------------------------------------

    def submit(self, new: Sequence[Job], now: Instant) -> list[Job]:
        """Insert pending jobs (one transaction for a whole array); ids come back in order.
        Each job's tenant must exist (``NotFound`` ``unknown_tenant``)."""
        return self.writes.run(lambda conn: submit_jobs(conn, new, now, self._user_pks))

    def apply(
        self, plan: Plan, now: Instant, lease_ttl_s: int, *, all_positions: bool = True
    ) -> ApplyResult:
        """Write a cycle's plan (see ``job_apply``)."""
        return apply_plan(self.store, self.mirror, plan, now, lease_ttl_s, all_positions)

    def finish(
        self,
        job_id: int,
        state: JobState,
        now: Instant,
        exit_code: int | None = None,
        message: str = "",
    ) -> Job:
        """End a job: transition checked (409), claims freed from ``now``, usage folded in."""
        return self.writes.run(
            lambda conn: finish_job(conn, job_id, state, now, exit_code, message, self.half_life_s)
        )

    def requeue(self, job_id: int, now: Instant) -> Job:
        """A preempted or lost batch job back to pending (``requeues`` + 1)."""
        del now  # the job keeps its submission time (and so its age priority)
        return self.writes.run(lambda conn: requeue_job(conn, job_id))

    def heartbeat(self, job_id: int, now: Instant, ttl: int) -> Job:
        """Extend an interactive job's lease; a finished (or batch) job comes back unchanged."""
        return self.writes.run(lambda conn: heartbeat_job(conn, job_id, now, ttl))

    def record_launch(self, job_id: int, run: int, pid: int, host: str, at: float) -> Job | None:
        """A node agent started this run of a batch job (see ``job_writes.record_launch``)."""
        return self.writes.run(lambda conn: record_launch(conn, job_id, run, pid, host, at))

    def load(self, job_id: int) -> Job:
        """The job, or ``NotFound`` (``unknown_job``)."""
        with self.store.read() as conn:
            return load_job(conn, job_id)


def _filtered(query: Select[Any], flt: JobFilter) -> Select[Any]:
    if flt.user is not None:
        query = query.where(users.c.name == flt.user)
    if flt.tenant is not None:
        query = query.where(tenants.c.id == flt.tenant)
    if flt.states is not None:
        query = query.where(jobs.c.state.in_(sorted(s.value for s in flt.states)))
    if flt.kind is not None:
        query = query.where(jobs.c.kind == flt.kind.value)
    if flt.node_id is not None:
        query = query.where(_on_node(flt.node_id))
    return query


def _on_node(node_id: str) -> ColumnElement[bool]:
    """Pinned to the node, or allocated on it (``alloc_nodes`` is a separator-joined list)."""
    sep = GPU_ID_SEPARATOR
    escaped = node_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    column = jobs.c.alloc_nodes
    return or_(
        jobs.c.node_id == node_id,
        column == node_id,
        column.like(f"{escaped}{sep}%", escape="\\"),
        column.like(f"%{sep}{escaped}", escape="\\"),
        column.like(f"%{sep}{escaped}{sep}%", escape="\\"),
    )
