"""The live job queue held in memory: pending and running jobs, and the tenants.

The cycle snapshots the queue several times a second; re-reading and decoding 10,000 job rows
each time would cost far more than planning. Every job or tenant write bumps
``meta.jobs_version`` and stamps the rows it writes (``job_writes``), so a process catches up
by reading one counter and, when it moved, only the rows written since — the same scheme as the
booking ``ledger_mirror``. The first sync reads only unfinished jobs, never the history.

The cycle's own ``apply`` rewrites reasons, positions and estimates of many pending rows; it
records them here directly (``note_pending``) and later syncs skip those rows, so a cycle does
not read back what it just wrote. The ``Job`` objects of such rows keep the reason, estimate
and queue position they were read with (rebuilding thousands of frozen objects per cycle is
what we avoid); ``pending_info`` holds the current values and ``JobStore.get`` reads the row.
"""

from __future__ import annotations

import threading
from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam

from procplan.core.jobs import Blockers, Job, JobState, PendingInfo, Reason, Tenant
from procplan.core.timeutil import Instant
from procplan.store.engine import Store
from procplan.store.job_rows import ACTIVE_JOBS, job_select, row_to_job
from procplan.store.job_writes import JOBS_VERSION
from procplan.store.tables import jobs, tenants
from procplan.store.tenants_repo import TENANT_SELECT, row_to_tenant

# (reason, estimated_start, queue_position, waits_for) as last written.
Info = tuple[Reason | None, Instant | None, int | None, Blockers]

_CHANGED = job_select().where(jobs.c.version > bindparam("after"))
_CHANGED_SKIPPING_LOCAL = _CHANGED.where(
    ~(
        jobs.c.version.in_(bindparam("local", expanding=True))
        & (jobs.c.state == JobState.PENDING.value)
    )
)
_TENANTS = TENANT_SELECT.order_by(tenants.c.pk)


class JobMirror:
    """Unfinished jobs by id plus every tenant, synced from the database on demand."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.RLock()
        self._version = -1
        self._pending = _Queue()
        self._running = _Queue()
        self._versions: dict[int, int] = {}  # row version per job (may be newer than Job's)
        self._info: dict[int, Info] = {}
        self._local: set[int] = set()
        self._tenants: tuple[tuple[Tenant, float, Instant], ...] = ()

    @property
    def version(self) -> int:
        return self._version

    # ---- catching up ---------------------------------------------------------------------

    def sync(self) -> None:
        """Catch up with the last commit (one counter read when nothing changed)."""
        if int(self._store.peek(JOBS_VERSION)) == self._version:
            return
        with self._store.read() as conn:
            self.sync_with(conn, None)

    def sync_with(self, conn: Connection, upto: int | None) -> None:
        """Catch up through ``conn``. ``upto``: the caller holds the jobs-version lock and
        every version up to ``upto`` is committed (``apply`` inside its write)."""
        with self._lock:
            current = int(conn.execute(JOBS_VERSION).scalar_one()) if upto is None else upto
            if current == self._version:
                return
            if self._version < 0:
                rows = conn.execute(ACTIVE_JOBS).all()
            elif self._local:
                params = {"after": self._version, "local": sorted(self._local)}
                rows = conn.execute(_CHANGED_SKIPPING_LOCAL, params).all()
            else:
                rows = conn.execute(_CHANGED, {"after": self._version}).all()
            tenant_rows = conn.execute(_TENANTS).all()
            self._apply(rows, tenant_rows, current)

    def _apply(
        self, rows: Sequence[Sequence[Any]], tenant_rows: Iterable[Sequence[Any]], current: int
    ) -> None:
        newest = current
        for row in rows:
            job_id, version = int(row[0]), int(row[-2])
            newest = max(newest, version)
            if version <= self._versions.get(job_id, -1):
                continue
            job = row_to_job(row)
            if job.state.is_finished:
                self._forget(job_id)
                continue
            queue, other = self._pending, self._running
            if job.state is JobState.RUNNING:
                queue, other = other, queue
            other.drop(job_id)
            queue.put(job)  # replaced in place when it was already there
            self._versions[job_id] = version
            self._info[job_id] = (
                job.reason, job.estimated_start, job.queue_position, job.waits_for
            )  # fmt: skip
        self._tenants = tuple(row_to_tenant(row) for row in tenant_rows)
        self._version = max(self._version, newest)
        self._local = {v for v in self._local if v > self._version}

    def _forget(self, job_id: int) -> None:
        self._pending.drop(job_id)
        self._running.drop(job_id)
        self._versions.pop(job_id, None)
        self._info.pop(job_id, None)

    def note_pending(self, version: int, written: Mapping[int, Info]) -> None:
        """``apply`` committed these pending rows at ``version``: record them, skip re-reading."""
        with self._lock:
            for job_id, info in written.items():
                if self._versions.get(job_id, version) < version:
                    self._info[job_id] = info
                    self._versions[job_id] = version
            if version > self._version:
                self._local.add(version)

    # ---- views (call sync first) -----------------------------------------------------------

    def queue(self) -> tuple[tuple[Job, ...], tuple[Job, ...]]:
        """``(pending, running)`` in id order; each rebuilt only after it changed."""
        with self._lock:
            return self._pending.view(), self._running.view()

    def tenants(self) -> tuple[tuple[Tenant, float, Instant], ...]:
        """Every tenant with its stored ``(usage_gpu_s, usage_at)``."""
        return self._tenants

    def jobs(self) -> Mapping[int, Job]:
        """The unfinished jobs by id (a live read-only view, not a copy)."""
        return ChainMap(self._pending.by_id, self._running.by_id)

    def changed_pending(
        self, planned: Mapping[int, PendingInfo], *, all_positions: bool = True
    ) -> dict[int, Info]:
        """The planned reasons/positions/estimates that differ from what is stored, for jobs
        still pending: what ``apply`` must write (usually a handful of rows).

        When one job starts, every job behind it moves up a place: rewriting ten thousand rows
        for that on every cycle cost more than the rest of the cycle. With ``all_positions``
        false, a change of position alone is written only near the head of the queue (the
        first ``EAGER_POSITIONS`` places, before or after); the scheduler passes true on a
        periodic refresh, so deep positions lag by at most that period.
        """
        changed: dict[int, Info] = {}
        with self._lock:
            pending, info_now = self._pending.by_id, self._info
            for job_id, info in planned.items():
                if job_id not in pending:
                    continue
                new = (info.reason, info.estimated_start, info.position, info.waits_for)
                old = info_now.get(job_id)
                if old == new:
                    continue
                if not all_positions and _only_deep_position_moved(old, new):
                    continue
                changed[job_id] = new
        return changed

    def pending_info(self, job_id: int) -> Info | None:
        return self._info.get(job_id)


EAGER_POSITIONS = 100


def _only_deep_position_moved(old: Info | None, new: Info) -> bool:
    if old is None or old[:2] != new[:2] or old[3] != new[3]:
        return False
    return min(old[2] or 0, new[2] or 0) > EAGER_POSITIONS


class _Queue:
    """Jobs of one state by id, kept in id order, with a cached tuple view.

    New ids are nearly always larger than every id present (ids grow), so they are appended;
    a smaller one (a requeued or just-started job) marks the order stale and the next view
    sorts once.
    """

    __slots__ = ("_last", "_sorted", "_view", "by_id")

    def __init__(self) -> None:
        self.by_id: dict[int, Job] = {}
        self._last = -1
        self._sorted = True
        self._view: tuple[Job, ...] | None = ()

    def put(self, job: Job) -> None:
        if job.id not in self.by_id:
            if job.id < self._last:
                self._sorted = False
            self._last = max(self._last, job.id)
        self.by_id[job.id] = job
        self._view = None

    def drop(self, job_id: int) -> None:
        if self.by_id.pop(job_id, None) is not None:
            self._view = None

    def view(self) -> tuple[Job, ...]:
        if self._view is None:
            if not self._sorted:
                self.by_id = {k: self.by_id[k] for k in sorted(self.by_id)}
                self._sorted = True
            self._view = tuple(self.by_id.values())
        return self._view
