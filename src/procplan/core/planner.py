"""The scheduler: ``plan(snapshot, now, policy) -> Plan``, a pure function.

One pass over the pending queue in priority order (``core.priority``), backfill style:

1. Static checks per job shape (``core.placement.ShapeBook``): unsatisfiable, nodes down,
   booking not active. Then the tenant's quota (``core.quota``).
2. Start now if a placement exists whose claim hits no foreign booking and no reservation
   made earlier in this pass, so a backfilled job never delays a higher one's estimate.
   A zero-GPU (CPU-only) job claims nothing and starts at once on a node that can run it.
   With ``Policy.backfill`` off, no job starts after the first blocked one (strict order).
3. Otherwise the job is blocked. The first blocked job may preempt (``core.preemption``);
   the first ``reserve_depth`` blocked jobs get a reservation at their earliest start, which
   is also their estimated start; later ones get a reason and no estimate.

Before the pass, running open-ended jobs are checked against foreign bookings (preempted
when one has begun, warned ahead). Ties break by config order, PCI order, submission time
and id; no clock, no I/O, no randomness.

Speed (10,000 pending jobs, 2,400 GPUs): jobs of one shape share their eligibility and a
``NowFit`` summary (``core.nowfit``) that answers "starts now?" and "why not?" without a
scan, so the placement search runs only for jobs that start or get a reservation.
"""

from __future__ import annotations

from itertools import chain
from operator import attrgetter

from procplan.core.availability import Cluster
from procplan.core.jobs import (
    NO_BLOCKERS,
    OPEN_END,
    Blockers,
    Job,
    JobKind,
    Notice,
    Plan,
    Policy,
    Preemption,
    Reason,
    Snapshot,
    Start,
)
from procplan.core.ledger.rules import Want
from procplan.core.nowfit import NowFit, now_fit, now_fit_for_owner
from procplan.core.pending_info import pending_infos
from procplan.core.placement import (
    Placement,
    Shape,
    ShapeBook,
    earliest_start,
    least_loaded,
    options,
    place_now,
    shape_key,
)
from procplan.core.preemption import (
    Candidate,
    booking_watch,
    drain_pool,
    find_victims,
    victim_pool,
    worst_class,
)
from procplan.core.priority import PriorityModel, order_pending
from procplan.core.quota import QuotaBook, Verdict
from procplan.core.timeutil import Instant
from procplan.core.waits import WaitBook, gpus_of, own_booking

__all__ = ["plan"]

# Looked up once per pending job: plain module constants (an enum member lookup goes through
# the metaclass and costs several dict lookups).
_OK, _BORROW = Verdict.OK, Verdict.BORROW
_QUOTA_REASON = {Verdict.QUOTA_JOBS: Reason.QUOTA_JOBS, Verdict.QUOTA_GPUS: Reason.QUOTA_GPUS}
_limit_of = attrgetter("time_limit_s")
_PRIORITY, _RESOURCES = Reason.PRIORITY, Reason.RESOURCES

# Stands for "a user who owns no booking that matters now" in NowFit keys (not a user name:
# those are printable).
_ANYONE = "\x00"


def plan(snapshot: Snapshot, now: Instant, policy: Policy) -> Plan:
    """Decide starts, preemptions, notices and every pending job's reason, queue position
    and estimated start (see the module docstring)."""
    return _Pass(snapshot, now, policy).run()


class _Pass:
    """One planning pass; all state is local to it."""

    def __init__(self, snapshot: Snapshot, now: Instant, policy: Policy) -> None:
        self.snapshot, self.now, self.policy = snapshot, now, policy
        blocked = snapshot.foreign_gpus if policy.foreign_gpus_blocked else frozenset()
        self.cluster = Cluster(
            snapshot.topology, now, snapshot.node_states, blocked, snapshot.batch_nodes
        )
        self.cluster.add_bookings(snapshot.bookings)
        self.shapes = ShapeBook(self.cluster, snapshot.bookings)
        self.model = PriorityModel(snapshot, now, policy)
        self.quota = QuotaBook(snapshot.tenants, snapshot.running)
        self.starts: list[Start] = []
        self.preemptions: list[Preemption] = []
        self.notices: list[Notice] = []
        # Waiting jobs in queue order, as four columns (not 10,000 tuples: every object
        # that outlives the pass is work for the garbage collector).
        self.wait_ids: list[int] = []
        self.wait_reasons: list[Reason] = []
        self.wait_estimates: list[Instant | None] = []
        self.wait_blockers: dict[int, Blockers] = {}  # by place in the columns
        self.stopping: set[int] = set()  # GPUs of jobs already being stopped
        self.running: list[tuple[Job, tuple[int, ...]]] = []
        self.reserved = 0
        # The highest priority class of a job that reserved GPUs in this pass: a job blocked
        # only by reservations waits on "Priority" only if one of a strictly higher class
        # holds one (otherwise behind equals: "Resources").
        self.top_reserved: float = float("-inf")
        self.preempt_tried = False
        self.node_jobs: list[int] | None = None  # see _node_jobs
        self.pending_by: dict[int, int | None] | None = None  # see _held_back
        # Per shape: "could it start now?" summaries by booking owner (``core.nowfit``), and
        # which summary each user reads (see ``_owner``).
        self.fits: dict[Shape, dict[str, NowFit]] = {}
        self.owners: dict[Shape, dict[str, str]] = {}
        self.holder = [0] * len(self.cluster.gpu_ids)  # GPU -> the job holding it (0: none)
        self._hold_running()
        self.cluster.index_free()
        self.booking_users = self._booking_users()
        self.waits = WaitBook(self.cluster, snapshot.running, self.holder)

    # -- setup ----------------------------------------------------------------------------

    def _hold_running(self) -> None:
        """Mark running jobs' GPUs held; stop open-ended ones a foreign booking reached.
        (Runs for every running job: the common case, a job with a time limit, is inline.)"""
        cluster, policy, now = self.cluster, self.policy, self.now
        index, busy, holder = cluster.index, cluster.busy, self.holder
        floor = now + 1  # a GPU still held is never free in this cycle, even if overdue
        for job in self.snapshot.running:
            try:
                gpus = tuple(map(index.__getitem__, job.gpu_ids))
            except KeyError:  # a GPU no longer in the topology: hold the ones that are
                gpus = tuple([index[g] for g in job.gpu_ids if g in index])
            limit, started = job.time_limit_s, job.started_at
            if job.preempt_at is not None:
                until = job.preempt_at + policy.preempt_grace_s
                self.stopping.update(gpus)
            elif limit is not None:
                until = (started if started is not None else now) + limit
                self.running.append((job, gpus))
            else:
                until = self._watch_open_ended(job, gpus)
            until = max(until, floor)
            job_id = job.id
            for g in gpus:
                holder[g] = job_id
                if busy[g] < until:
                    busy[g] = until

    def _watch_open_ended(self, job: Job, gpus: tuple[int, ...]) -> Instant:
        """An open-ended running job: warn or stop it for foreign bookings (ledger rule 3);
        returns when its GPUs will be free (at the next foreign booking, plus the grace)."""
        until, stop, notices = booking_watch(self.cluster, job, gpus, self.policy)
        self.notices.extend(notices)
        if stop is None:
            self.running.append((job, gpus))
        else:
            self.preemptions.append(stop)
            self.stopping.update(gpus)
        return until

    def _booking_users(self) -> dict[str, set[int]]:
        """Users owning a booking on a GPU free now that a claim starting now could meet, and
        the nodes of those bookings: for everyone else every booking there is foreign, so
        they share NowFit summaries."""
        cluster = self.cluster
        limits = set(map(_limit_of, self.snapshot.pending))
        limits.discard(None)
        horizon = self.now + max(max(limits, default=0), 1)
        users: dict[str, set[int]] = {}
        for g, spans in enumerate(cluster.bookings):
            if spans and cluster.busy[g] <= self.now:
                for span in spans:
                    if span.start < horizon:
                        users.setdefault(span.user, set()).add(cluster.gpu_node[g])
        return users

    def run(self) -> Plan:
        self._walk(order_pending(self.snapshot.pending, self.model))
        pending = pending_infos(
            self.wait_ids, self.wait_reasons, self.wait_estimates, self.wait_blockers
        )
        return Plan(tuple(self.starts), tuple(self.preemptions), tuple(self.notices), pending)

    # -- one job --------------------------------------------------------------------------

    def _walk(self, queue: list[Job]) -> None:
        """Visit the queue in order. This loop runs for every pending job, so what most
        jobs need (their shape's static verdict, the quota) is looked up inline, and jobs
        of tenants without limits skip the quota book."""
        shapes, make_shape = self.shapes.shapes, self.shapes.get
        check, limited = self.quota.check, self.quota.limited
        wait = self._wait
        for job in queue:
            shape = shapes.get(shape_key(job)) or make_shape(job)
            if shape.reason is not None:
                waits = own_booking(job, shape.reason, shape.estimate)
                wait(job.id, shape.reason, shape.estimate, waits)
                continue
            verdict = check(job.tenant, job.gpu_count) if job.tenant in limited else _OK
            if verdict is _OK or verdict is _BORROW:
                self._visit(job, shape, verdict is _BORROW)
            else:
                wait(job.id, _QUOTA_REASON[verdict], None, self.waits.quota(job.tenant))

    def _wait(
        self,
        job_id: int,
        reason: Reason,
        estimate: Instant | None,
        waits: Blockers | None = None,
    ) -> None:
        if waits is not None and waits is not NO_BLOCKERS:
            self.wait_blockers[len(self.wait_ids)] = waits
        self.wait_ids.append(job_id)
        self.wait_reasons.append(reason)
        self.wait_estimates.append(estimate)

    def _visit(self, job: Job, shape: Shape, borrowed: bool) -> None:
        """Start the job now, or record why it waits; the common outcome (it cannot start)
        takes no placement search (see ``core.nowfit``)."""
        if job.gpu_count == 0:
            self._start(job, self._no_gpus(job, shape), borrowed)
            return
        length = job.time_limit_s
        known = self.fits.get(shape)
        fit = None if known is None or job.user in self.booking_users else known.get(_ANYONE)
        if fit is None or fit.log_pos != len(self.cluster.log):
            fit = self._fit(shape, job.user, job.booking_id)
        fits = fit.open if length is None else length <= fit.limit  # NowFit.fits, inline
        if job.preempted_by is not None and self._held_back(job):
            self._wait(job.id, _RESOURCES, None, Blockers((job.preempted_by,)))
            return
        if fits and self.preempt_tried and not self.policy.backfill:
            self._wait(job.id, _PRIORITY, None)  # strict order: nothing passes a blocked job
            return
        if fits and self._try_start(job, shape, borrowed):
            return
        reason = fit.reason(length)
        if reason is _PRIORITY and self.model.class_of(job) >= self.top_reserved:
            reason = _RESOURCES  # only equals (or lower classes) reserved ahead of it
        # A borrowing job waits for GPUs (not for its quota) and gets no reservation.
        if borrowed or (self.preempt_tried and self.reserved >= self.policy.reserve_depth):
            self._wait(job.id, reason, None)
        else:
            want = Want(job.user, job.booking_id, length)
            self._blocked(job, shape, want, reason)

    def _held_back(self, job: Job) -> bool:
        """The job was preempted, within the thrash window, for a job that still waits: it
        does not start (it would take back the GPUs freed for that job; ADR 0011). Unless
        that job was last preempted for this one: two jobs holding each other back would
        both wait on idle GPUs for the whole window, so then the queue order decides."""
        if self.pending_by is None:
            self.pending_by = {other.id: other.preempted_by for other in self.snapshot.pending}
        at = job.last_preempted_at
        recent = at is not None and at > self.now - self.policy.thrash_window_s
        by = job.preempted_by
        return recent and by in self.pending_by and self.pending_by[by] != job.id

    def _fit(self, shape: Shape, user: str, booking_id: int | None) -> NowFit:
        """The shape's NowFit for this booking owner, kept current with the change log; a
        booking owner's is derived from everyone else's."""
        user = self._owner(shape, user) if user in self.booking_users else _ANYONE
        fits = self.fits.setdefault(shape, {})
        fit = fits.get(user)
        if fit is not None:
            if fit.log_pos != len(self.cluster.log):
                fit.refresh(self.cluster, shape)
            return fit
        owner = Want(user, booking_id, None)
        if user is _ANYONE:
            fit = now_fit(self.cluster, shape, owner)
        else:
            anyone = self._fit(shape, _ANYONE, booking_id)
            mine = self.booking_users[user]
            fit = now_fit_for_owner(self.cluster, shape, owner, anyone, mine)
        fits[user] = fit
        return fit

    def _owner(self, shape: Shape, user: str) -> str:
        """``user`` if their bookings on free GPUs lie on the shape's nodes, else anyone."""
        owners = self.owners.setdefault(shape, {})
        owner = owners.get(user)
        if owner is None:
            mine = self.booking_users[user]
            owner = user if any(n in shape.nodes for n in mine) else _ANYONE
            owners[user] = owner
        return owner

    def _try_start(self, job: Job, shape: Shape, borrowed: bool) -> bool:
        want = Want(job.user, job.booking_id, job.time_limit_s)
        placement = place_now(self.cluster, shape, want)
        if placement is None:
            return False  # NowFit said it fits: only reachable if the two disagree
        self._start(job, placement, borrowed)
        return True

    def _no_gpus(self, job: Job, shape: Shape) -> Placement:
        """Where a zero-GPU (CPU-only) job runs; it claims no GPU, but something must run it.

        Pinned or booked: that node (the shape holds just it). A batch job: the node agent
        runs it, so it goes to the usable nodes that run batch jobs (the shape's nodes; when
        there are none the shape already made it wait with ``NoAgent``/``NodeDown``), the
        fewest running jobs first (``least_loaded``). An interactive job runs where its
        client runs: on the node its ``host`` names when that node is usable, else on none;
        its lease still ends it."""
        if job.node_id is not None or job.booking_id is not None:
            return [(n, []) for n in shape.nodes]
        if job.kind is JobKind.BATCH:
            return least_loaded(shape, self._node_jobs())
        n = self.shapes.host_node(job.host) if shape.count == 1 else None
        return [(n, [])] if n is not None and n in shape.nodes else []

    def _node_jobs(self) -> list[int]:
        """Running jobs per node (including this pass's starts), counted on first use: only
        CPU-only batch jobs need it, and most cycles have none."""
        if self.node_jobs is None:
            index = self.shapes.node_index
            counts = [0] * len(self.cluster.node_ids)
            held = chain(
                (job.node_ids for job in self.snapshot.running),
                (start.node_ids for start in self.starts),
            )
            for node_id in chain.from_iterable(held):
                n = index.get(node_id)
                if n is not None:
                    counts[n] += 1
            self.node_jobs = counts
        return self.node_jobs

    def _start(self, job: Job, placement: Placement, borrowed: bool) -> None:
        cluster = self.cluster
        claim_end = job.claim_end(self.now)
        gpus = gpus_of(placement)
        cluster.start(gpus, claim_end)
        self.quota.add(job.tenant, job.gpu_count)
        if self.node_jobs is not None:
            for n, _ in placement:
                self.node_jobs[n] += 1
        self.waits.start(job, gpus)
        node_ids = tuple(cluster.node_ids[n] for n, _ in placement)
        gpu_ids = tuple(cluster.gpu_ids[g] for g in gpus)
        self.starts.append(Start(job.id, node_ids, gpu_ids, claim_end, borrowed))

    # -- blocked jobs ---------------------------------------------------------------------

    def _blocked(self, job: Job, shape: Shape, want: Want, reason: Reason) -> None:
        """A job that cannot start now: maybe preempt for it (the first one only), reserve
        its earliest start (the first ``reserve_depth`` ones), or just say why it waits."""
        first = not self.preempt_tried
        self.preempt_tried = True
        within_depth = self.reserved < self.policy.reserve_depth
        if not (within_depth or first):
            self._wait(job.id, reason, None)
            return
        found = earliest_start(self.cluster, shape, want)
        soon = self.now + self.policy.preempt_grace_s
        if first and (found is None or found[0] > soon) and self._preempt(job, shape, want, found):
            return
        if not within_depth:
            self._wait(job.id, reason, None)
            return
        self.reserved += 1
        if found is None:  # never, as things stand (GPUs held open-ended or blocked)
            if not (first and self._drain(job, shape, want, reason)):
                waits = self.waits.open_ended(chain(*shape.nodes.values()))
                self._wait(job.id, reason, None, waits)
            return
        at, placement = found
        gpus, waits = self.waits.promise(job.id, placement, at, at, want)
        self.top_reserved = max(self.top_reserved, self.model.class_of(job))
        if at <= soon and self.stopping.intersection(gpus):
            reason = Reason.PREEMPTING  # it starts on GPUs of jobs already being stopped
        self._wait(job.id, reason, at, waits)

    def _preempt(
        self, job: Job, shape: Shape, want: Want, found: tuple[Instant, Placement] | None
    ) -> bool:
        """Stop a minimal set of running jobs so ``job`` starts after the grace period; the
        GPUs it will use are reserved for it from now on. When the best set holds victims
        that have not yet run ``min_runtime_s`` and no set of ready victims of no higher
        class would do, wait for them instead (``_await_victims``). ``found``: the job's
        earliest start without preempting."""
        policy, cluster, now = self.policy, self.cluster, self.now
        if not (policy.preemption and self.quota.tenant(job.tenant).allow_preemption):
            return False
        within_quota = self.quota.check(job.tenant, job.gpu_count) is Verdict.OK
        model = self.model
        pool = victim_pool(self.running, job, model.class_of, within_quota, now, policy)
        at = now + policy.preempt_grace_s
        chosen = self._victims(shape, want, pool, at) if pool else None
        if chosen is None:
            return False
        victims, placement = chosen
        young = [v for v in victims if v.ready_at > now]
        if young:
            ready = [v for v in pool if v.ready_at <= now]
            instead = self._victims(shape, want, ready, at) if ready else None
            if instead is None or worst_class(instead[0]) > worst_class(victims):
                return self._await_victims(job, want, young, placement, found)
            victims, placement = instead
        reason = f"preempted for job {job.id} (priority class {model.class_of(job)})"
        for victim in victims:
            self.preemptions.append(Preemption(victim.job.id, job.id, reason))
            cluster.release_at(victim.gpus, at)
            self.stopping.update(victim.gpus)
        _, waits = self.waits.promise(job.id, placement, now, at, want)
        self._reserved_by(job)
        self._wait(job.id, Reason.PREEMPTING, at, waits)
        return True

    def _victims(
        self, shape: Shape, want: Want, pool: list[Candidate], at: Instant
    ) -> tuple[list[Candidate], Placement] | None:
        """The cheapest victim set over the shape's options (a gang kept on one GPU model
        is searched one model at a time, so its victims are never spread over models it
        cannot use together): lowest worst class, then fewest victims."""
        best: tuple[list[Candidate], Placement] | None = None
        for option in options(shape):
            found = find_victims(self.cluster, option, want, pool, at)
            if found is not None and (best is None or _victim_cost(found) < _victim_cost(best)):
                best = found
        return best

    def _drain(self, job: Job, shape: Shape, want: Want, reason: Reason) -> bool:
        """No starvation behind open-ended jobs (ADR 0015): the first blocked job with no
        known start, once it has waited ``drain_after_s``, takes the placement that the fewest
        open-ended jobs hold and reserves its GPUs from now on, so no later job claims the
        ones that free up; it starts when those jobs end."""
        now = self.now
        if now - job.submitted_at < self.policy.drain_after_s:
            return False
        pool = drain_pool(self.running, now)
        chosen = self._victims(shape, want, pool, now + 1) if pool else None
        if chosen is None:
            return False
        holders, placement = chosen
        self.waits.reserve(job.id, gpus_of(placement), now, OPEN_END)
        self.top_reserved = max(self.top_reserved, self.model.class_of(job))
        self._wait(job.id, reason, None, Blockers(tuple(sorted(c.job.id for c in holders))))
        return True

    def _await_victims(
        self,
        job: Job,
        want: Want,
        young: list[Candidate],
        placement: Placement,
        found: tuple[Instant, Placement] | None,
    ) -> bool:
        """The job will preempt ``young`` once they have run ``min_runtime_s``: it waits
        (``MinRuntime``) with that estimate, and the GPUs are reserved for it from then.
        ``False`` (plan it as usual) when it would get GPUs sooner without preempting."""
        start = max(v.ready_at for v in young) + self.policy.preempt_grace_s
        if found is not None and found[0] <= start:
            return False
        _, waits = self.waits.promise(job.id, placement, start, start, want)
        self._reserved_by(job)
        self._wait(job.id, Reason.MIN_RUNTIME, start, waits)
        return True

    def _reserved_by(self, job: Job) -> None:
        self.reserved += 1
        self.top_reserved = max(self.top_reserved, self.model.class_of(job))


def _victim_cost(found: tuple[list[Candidate], Placement]) -> tuple[tuple[bool, float], int]:
    return worst_class(found[0]), len(found[0])
