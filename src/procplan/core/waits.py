"""What a waiting job waits for (issue #19: "the job(s) or booking it waits for").

The planner knows where a blocked job will start (its reservation, or the GPUs of the jobs it
preempts or waits to preempt); this module names who is in the way there: the jobs holding
those GPUs now (running, or being stopped for it), the jobs ahead in the queue that reserved
them before it, and the bookings in its window. It is asked only for jobs that get an
estimate (at most ``reserve_depth`` per pass), so it may look at each of their GPUs; a GPU
has one holder at a time (ledger rule 1), which the planner notes while it holds the running
jobs' GPUs. A job held back by its tenant's quota waits for the tenant's running jobs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain

from procplan.core.availability import Cluster
from procplan.core.jobs import NO_BLOCKERS, OPEN_END, Blockers, Job, Reason
from procplan.core.ledger.rules import Want
from procplan.core.placement import Placement
from procplan.core.timeutil import Instant

__all__ = ["MAX_BLOCKERS", "WaitBook", "gpus_of", "own_booking"]

# At most this many jobs and bookings are named as what one job waits for (a wide gang can
# wait for dozens of small jobs; the first ids say enough).
MAX_BLOCKERS = 16


def own_booking(job: Job, reason: Reason, estimate: Instant | None) -> Blockers:
    """A job that waits for its own booking to begin (``BookingInactive`` with the
    booking's start as its estimate) waits for that booking."""
    if reason is Reason.BOOKING_INACTIVE and estimate is not None and job.booking_id is not None:
        return Blockers(bookings=(job.booking_id,))
    return NO_BLOCKERS


class WaitBook:
    """What blocked jobs wait for, in one planning pass: it reads the GPUs' holders (the
    planner's ``holder`` column, filled while it holds the running jobs' GPUs) and records
    this pass's starts and reservations."""

    def __init__(self, cluster: Cluster, running: Sequence[Job], holder: list[int]) -> None:
        self.cluster = cluster
        self.running = running
        self.holder = holder  # GPU index -> id of the job holding it now (0: none)
        self.started: list[Job] = []  # this pass's starts
        self.tenants: dict[str, list[int]] | None = None  # tenant -> job ids, see ``quota``
        self.quota_waits: dict[str, Blockers] = {}  # ``quota`` answers, until a start
        # This pass's reservations per GPU: (job id, start, end).
        self.promised: dict[int, list[tuple[int, Instant, Instant]]] = {}

    def start(self, job: Job, gpus: Sequence[int]) -> None:
        """``job`` started on ``gpus`` in this pass."""
        self.started.append(job)
        for g in gpus:
            self.holder[g] = job.id
        if self.tenants is not None:
            self.tenants.setdefault(job.tenant, []).append(job.id)
            self.quota_waits.pop(job.tenant, None)

    def reserve(self, job_id: int, gpus: Sequence[int], start: Instant, end: Instant) -> None:
        """Reserve ``[start, end)`` on ``gpus`` for a blocked job, remembering whose it is."""
        self.cluster.reserve(gpus, start, end)
        for g in gpus:
            self.promised.setdefault(g, []).append((job_id, start, end))

    def promise(
        self, job_id: int, placement: Placement, start: Instant, at: Instant, want: Want
    ) -> tuple[list[int], Blockers]:
        """Reserve ``placement`` for a blocked job that starts there at ``at`` (held for it
        from ``start``: now when victims are being stopped for it): its GPUs, and who is in
        its way before ``at``."""
        gpus = gpus_of(placement)
        waits = self.blockers(gpus, at, want)
        self.reserve(job_id, gpus, start, want.ends(at)[1])
        return gpus, waits

    def blockers(self, gpus: Sequence[int], at: Instant, want: Want) -> Blockers:
        """Who holds ``gpus`` before ``at``, when a job wanting ``want`` starts there."""
        holder, promised, now = self.holder, self.promised, self.cluster.now
        jobs = {holder[g] for g in gpus if holder[g]}
        for g in gpus:
            for job_id, start, end in promised.get(g, ()):
                if start < at and end > now:
                    jobs.add(job_id)
        bookings = {
            span.id
            for g in gpus
            for span in self.cluster.bookings[g]
            if span.start < at and span.end > now and want.foreign(span.user, span.id)
        }
        return Blockers(_first(jobs), _first(bookings))

    def open_ended(self, gpus: Iterable[int]) -> Blockers:
        """A job that could never start as things stand waits for the open-ended jobs on the
        GPUs it could use (held with no end in sight)."""
        busy, blocked, holder = self.cluster.busy, self.cluster.blocked, self.holder
        jobs = {holder[g] for g in gpus if busy[g] >= OPEN_END and not blocked[g] and holder[g]}
        return Blockers(_first(jobs))

    def quota(self, tenant: str) -> Blockers:
        """A job held back by its tenant's quota waits for the tenant's running jobs (asked
        for every such job: one answer per tenant, kept until the tenant starts another)."""
        known = self.quota_waits.get(tenant)
        if known is not None:
            return known
        if self.tenants is None:
            self.tenants = {}
            for job in chain(self.running, self.started):
                self.tenants.setdefault(job.tenant, []).append(job.id)
        found = Blockers(_first(set(self.tenants.get(tenant, ()))))
        self.quota_waits[tenant] = found
        return found


def gpus_of(placement: Placement) -> list[int]:
    """The GPU indices of a placement, node by node."""
    return [g for _, node_gpus in placement for g in node_gpus]


def _first(ids: set[int]) -> tuple[int, ...]:
    return tuple(sorted(ids)[:MAX_BLOCKERS])
