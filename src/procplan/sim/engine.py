"""The event-driven replay: trace jobs through the production planner on a simulated clock.

Why this shape: issue #15 asks for a simulator that exercises ``core.planner.plan`` itself,
not a copy, so every scheduling decision here is the one the server would make. The loop only
does the service's part: at each event time it builds a ``Snapshot``, asks the planner, and
applies the plan — starts, and preemptions (the victim stops at once and goes back to the
queue with its remaining work). The clock is a plain integer that jumps from event to event;
nothing reads the real clock, and the workload generators draw from seeded generators, so two
runs of the same inputs are identical.

Events: arrivals, completions, bookings beginning and ending (``sim.workload``), node
outages and repairs, and, under ``las``, a running job crossing an attained-service band.

What the replay leaves out (stated, not hidden): a preempted job resumes where it stopped
(checkpointing), while a job on a failed node loses the work of its current run; no start-up
or checkpoint cost; no placement effect on speed (a job runs as fast on any GPUs); no quotas
(the traces give none); a job wider than any placement the cluster allows is skipped.
``LimitMode.ORACLE`` gives each job its real duration as its time limit (reservations and
backfill work); ``LimitMode.NONE`` submits open-ended jobs.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import NamedTuple

from procplan.core.jobs import Job, JobKind, JobState, NodeState, Plan, Snapshot, StatusChange
from procplan.core.model import Booking, Topology
from procplan.core.planner import plan
from procplan.core.timeutil import DAY
from procplan.sim.policies import POLICIES, PolicyName, Rank, SimPolicy, las_next_limit
from procplan.sim.traces import TraceJob
from procplan.sim.workload import NodeOutage, SimBooking

# Simulated instants start here (a real-looking epoch keeps any "is it set?" test honest).
SIM_EPOCH = 1_500_000_000

SIM_POLICY = POLICIES[PolicyName.PROCPLAN]

# Re-plans at one instant while plans keep preempting (each plan preempts for one job).
MAX_REPLANS = 64

_NEVER = 1 << 62
_DOWN = NodeState(up=False)


class LimitMode(StrEnum):
    ORACLE = "oracle"  # time limit = the job's real duration
    NONE = "none"  # open-ended jobs: the scheduler knows no durations


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A finished job, times relative to the trace's first submission. ``start_s`` is its
    first start; ``run_s`` the seconds it held GPUs in all (``None``: ``end_s - start_s``,
    it ran once without a stop)."""

    id: int
    submit_s: int
    start_s: int
    end_s: int
    gpus: int
    group: str
    run_s: int | None = None
    preemptions: int = 0

    @property
    def held_s(self) -> int:
        return self.end_s - self.start_s if self.run_s is None else self.run_s


class QueueSample(NamedTuple):
    """The queue at one event instant (seconds relative to the trace's first submission):
    jobs waiting and GPUs held, after that instant's scheduling. For plots over time."""

    t_s: int
    pending: int
    busy_gpus: int


@dataclass(slots=True)
class SimResult:
    """What a replay produced: finished jobs, the ids it had to skip (too wide for the
    cluster, or never placed), counts, and the bookings a job ran into (must stay empty)."""

    records: list[JobRecord] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    unplaced: list[int] = field(default_factory=list)
    events: int = 0
    plans: int = 0
    samples: list[QueueSample] = field(default_factory=list)
    preemptions: int = 0
    lost_runs: int = 0  # runs cut short by a node failure
    bookings: int = 0
    bookings_broken: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Work:
    """A trace job's life in the replay: the ``Job`` the planner sees, and its progress."""

    trace: TraceJob
    job: Job
    left_s: int  # work still to do
    attained: int = 0  # GPU-seconds held so far (LAS)
    held_s: int = 0
    first_start: int | None = None
    run_from: int = 0
    generation: int = 0  # bumps at every stop: stale completion events are skipped


def gang_nodes(gpus: int, topology: Topology) -> int | None:
    """How many nodes a job of ``gpus`` GPUs spans: the fewest ``n`` that divides it evenly
    onto ``n`` nodes large enough (``Job.gpu_count`` must be a multiple of ``Job.nodes``);
    ``None`` when no ``n`` fits this cluster."""
    sizes = sorted((len(n.gpus) for n in topology.nodes), reverse=True)
    for count in range(1, len(sizes) + 1):
        if gpus % count == 0 and sizes[count - 1] >= gpus // count:
            return count
    return None


def simulate(
    jobs: Sequence[TraceJob],
    topology: Topology,
    limits: LimitMode = LimitMode.ORACLE,
    policy: SimPolicy = SIM_POLICY,
    bookings: Sequence[SimBooking] = (),
    outages: Sequence[NodeOutage] = (),
) -> SimResult:
    """Replay ``jobs`` (sorted by submission, as the readers return them) to the end.

    Simulation ids are positions in ``jobs`` plus one; ``JobRecord.id`` is the trace's id."""
    return _Replay(jobs, topology, limits, policy, bookings, outages).run()


class _Replay:
    """One replay; see the module docstring."""

    def __init__(
        self,
        jobs: Sequence[TraceJob],
        topology: Topology,
        limits: LimitMode,
        policy: SimPolicy,
        bookings: Sequence[SimBooking],
        outages: Sequence[NodeOutage],
    ) -> None:
        self.topology, self.limits, self.policy = topology, limits, policy
        self.result = SimResult(bookings=len(bookings))
        self.traces = {i + 1: t for i, t in enumerate(jobs)}
        self.arrivals = list(self.traces.items())
        self.arrivals.reverse()  # pop() from the end takes the earliest
        self.pending: dict[int, _Work] = {}
        self.running: dict[int, _Work] = {}
        self.busy = 0  # GPUs the running jobs hold
        self.completions: list[tuple[int, int, int]] = []  # (end, sim id, generation)
        # Other events: (instant, kind, payload); kinds sort outages before bookings.
        self.wakes: list[tuple[int, int, str, int]] = []
        self.node_states: dict[str, NodeState] = {}
        self.bookings = sorted(
            (_booking(b, topology) for b in bookings), key=lambda b: (b.start, b.id)
        )
        self.booking_window: list[Booking] = []
        self.next_booking = 0
        self.horizon = max(max((t.duration_s for t in jobs), default=0), DAY)
        self.runs_by_node: dict[str, list[tuple[int, int]]] = {}
        self.usage: dict[str, tuple[float, int]] = {}  # group -> (GPU-seconds, as of)
        for b in self.bookings:
            heapq.heappush(self.wakes, (b.start, 1, "booking", b.id))
            heapq.heappush(self.wakes, (b.end, 1, "booking", b.id))
        for o in outages:
            heapq.heappush(self.wakes, (SIM_EPOCH + o.down_s, 0, "down:" + o.node_id, 0))
            heapq.heappush(self.wakes, (SIM_EPOCH + o.up_s, 0, "up:" + o.node_id, 0))

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> SimResult:
        result = self.result
        while self.arrivals or self.completions or (self.pending and self.wakes):
            now = min(
                SIM_EPOCH + self.arrivals[-1][1].submit_s if self.arrivals else _NEVER,
                self.completions[0][0] if self.completions else _NEVER,
                self.wakes[0][0] if self.wakes else _NEVER,
            )
            self._complete(now)
            forced = self._wake(now)
            self._arrive(now)
            if self._worth_planning(forced):
                self._cycle(now)
            result.samples.append(QueueSample(now - SIM_EPOCH, len(self.pending), self.busy))
        result.unplaced = sorted(w.trace.id for w in self.pending.values())
        result.records.sort(key=lambda r: (r.submit_s, r.id))
        result.bookings_broken = self._broken_bookings()
        return result

    def _complete(self, now: int) -> None:
        completions = self.completions
        while completions and completions[0][0] <= now:
            end, sim_id, generation = heapq.heappop(completions)
            work = self.running.get(sim_id)
            if work is None or work.generation != generation:
                continue  # stopped since (preempted, or its node failed)
            self._stop(work, end)
            del self.running[sim_id]
            assert work.first_start is not None
            trace = work.trace
            stopped_once = work.held_s == end - work.first_start
            self.result.records.append(
                JobRecord(
                    trace.id,
                    trace.submit_s,
                    work.first_start - SIM_EPOCH,
                    end - SIM_EPOCH,
                    trace.gpus,
                    trace.group,
                    None if stopped_once else work.held_s,
                    work.job.preemptions,
                )
            )
            self.result.events += 1

    def _wake(self, now: int) -> bool:
        """Handle outages, booking edges and LAS band crossings due by ``now``; ``True``
        when one of them calls for a plan even if nothing else does."""
        forced = False
        wakes = self.wakes
        while wakes and wakes[0][0] <= now:
            _, _, what, number = heapq.heappop(wakes)
            self.result.events += 1
            if what.startswith("down:"):
                self._node_down(what[5:], now)
            elif what.startswith("up:"):
                self.node_states.pop(what[3:], None)
            elif what == "band":
                work = self.running.get(number)
                if work is None:
                    continue
                self._rank_running(work, now)
            forced = True
        return forced

    def _arrive(self, now: int) -> None:
        arrivals, topology, result = self.arrivals, self.topology, self.result
        while arrivals and SIM_EPOCH + arrivals[-1][1].submit_s <= now:
            sim_id, trace = arrivals.pop()
            result.events += 1
            nodes = gang_nodes(trace.gpus, topology)
            if nodes is None:
                result.skipped.append(trace.id)
                continue
            job = Job(
                id=sim_id,
                user=trace.group,
                tenant=trace.group,
                kind=JobKind.BATCH,
                name=str(trace.id),
                priority=self.policy.priority(trace.duration_s, trace.duration_s, 0),
                gpu_count=trace.gpus,
                nodes=nodes,
                time_limit_s=trace.duration_s if self.limits is LimitMode.ORACLE else None,
                submitted_at=SIM_EPOCH + trace.submit_s,
            )
            self.pending[sim_id] = _Work(trace, job, trace.duration_s)

    def _worth_planning(self, forced: bool) -> bool:
        """Skip the planner when its outcome is known: with nothing that can preempt, no job
        starts while fewer GPUs are free than the narrowest waiting job needs (bookings only
        take GPUs away; the stops they cause come at their own events, which are forced)."""
        if forced:  # a booking begins (open-ended jobs on it stop), a node or a band changed
            return True
        if not self.pending:
            return False
        if self.policy.preemptive:
            return True
        narrowest = min(w.trace.gpus for w in self.pending.values())
        return self.topology.gpu_count - self.busy >= narrowest

    # -- one cycle --------------------------------------------------------------------------

    def _cycle(self, now: int) -> None:
        """Plan and apply at ``now``; plan again while the plan preempts (the planner
        preempts for one blocked job per pass)."""
        for _ in range(MAX_REPLANS):
            decided = plan(self._snapshot(now), now, self.policy.planner)
            self.result.plans += 1
            self._apply_starts(decided, now)
            if not decided.preemptions:
                return
            for stop in decided.preemptions:
                work = self.running.pop(stop.job_id, None)
                if work is not None:
                    self._requeue_preempted(work, stop.for_job_id, now)

    def _snapshot(self, now: int) -> Snapshot:
        if self.policy.rank is Rank.REMAINING:
            for work in self.running.values():
                self._rank_running(work, now)
        return Snapshot(
            topology=self.topology,
            bookings=self._bookings_now(now),
            running=tuple(w.job for w in self.running.values()),
            pending=tuple(w.job for w in self.pending.values()),
            usage=self._usage_now(now) if self.policy.feeds_usage else {},
            node_states=self.node_states,
        )

    def _apply_starts(self, decided: Plan, now: int) -> None:
        for start in decided.starts:
            work = self.pending.pop(start.job_id)
            work.job = work.job.changed(
                {
                    "state": JobState.RUNNING,
                    "started_at": now,
                    "node_ids": start.node_ids,
                    "gpu_ids": start.gpu_ids,
                    "borrowed": start.borrowed,
                }
            )
            if work.first_start is None:
                work.first_start = now
            work.run_from = now
            self.running[start.job_id] = work
            self.busy += work.trace.gpus
            heapq.heappush(self.completions, (now + work.left_s, start.job_id, work.generation))
            self._schedule_band(work, now)

    # -- stops ------------------------------------------------------------------------------

    def _stop(self, work: _Work, now: int, keep_work: bool = True) -> None:
        """Account for the run that ends at ``now``."""
        ran = now - work.run_from
        self.busy -= work.trace.gpus
        work.held_s += ran
        work.attained += ran * work.trace.gpus
        if keep_work:
            work.left_s -= ran
        work.generation += 1
        if self.bookings:
            for node_id in work.job.node_ids:
                self.runs_by_node.setdefault(node_id, []).append((work.run_from, now))
        if self.policy.feeds_usage:
            group = work.trace.group
            self.usage[group] = (self._decayed(group, now) + ran * work.trace.gpus, now)

    def _requeue(self, work: _Work, change: StatusChange) -> None:
        back: StatusChange = {
            "state": JobState.PENDING,
            "started_at": None,
            "node_ids": (),
            "gpu_ids": (),
            "borrowed": False,
            "requeues": work.job.requeues + 1,
        }
        job = work.job.changed({**back, **change})
        trace = work.trace
        priority = self.policy.priority(trace.duration_s, work.left_s, work.attained)
        work.job = job if job.priority == priority else replace(job, priority=priority)
        self.pending[job.id] = work

    def _requeue_preempted(self, work: _Work, for_job: int | None, now: int) -> None:
        self._stop(work, now)
        self.result.preemptions += 1
        preemptions = work.job.preemptions + 1
        self._requeue(
            work, {"preemptions": preemptions, "last_preempted_at": now, "preempted_by": for_job}
        )

    def _node_down(self, node_id: str, now: int) -> None:
        self.node_states[node_id] = _DOWN
        for sim_id, work in list(self.running.items()):
            if node_id in work.job.node_ids:
                del self.running[sim_id]
                self._stop(work, now, keep_work=False)
                self.result.lost_runs += 1
                self._requeue(work, {})

    # -- priorities that change while a job runs --------------------------------------------

    def _rank_running(self, work: _Work, now: int) -> None:
        """Refresh a running job's priority (``srtf``: remaining time; ``las``: band)."""
        ran = now - work.run_from
        trace = work.trace
        priority = self.policy.priority(
            trace.duration_s, work.left_s - ran, work.attained + ran * trace.gpus
        )
        if priority != work.job.priority:
            # The policy's ranking, not a change of the submitted spec: ``changed`` refuses
            # spec fields, so the replay replaces it (the server never does this).
            work.job = replace(work.job, priority=priority)
        self._schedule_band(work, now)

    def _schedule_band(self, work: _Work, now: int) -> None:
        """Under ``las``, wake when the running job crosses into the next band."""
        if self.policy.rank is not Rank.ATTAINED:
            return
        attained = work.attained + (now - work.run_from) * work.trace.gpus
        limit = las_next_limit(attained)
        if limit is not None:
            at = now + -(-(limit - attained) // work.trace.gpus)
            heapq.heappush(self.wakes, (at, 2, "band", work.job.id))

    # -- bookings and usage -----------------------------------------------------------------

    def _bookings_now(self, now: int) -> tuple[Booking, ...]:
        """Bookings that end after ``now`` and begin within the longest job's reach."""
        window, bookings = self.booking_window, self.bookings
        while self.next_booking < len(bookings) and bookings[self.next_booking].start < (
            now + self.horizon
        ):
            window.append(bookings[self.next_booking])
            self.next_booking += 1
        if any(b.end <= now for b in window):
            window[:] = [b for b in window if b.end > now]
        return tuple(window)

    def _decayed(self, group: str, now: int) -> float:
        value, at = self.usage.get(group, (0.0, now))
        return value * math.pow(0.5, (now - at) / self.policy.planner.half_life_s)

    def _usage_now(self, now: int) -> dict[str, float]:
        return {group: self._decayed(group, now) for group in self.usage}

    def _broken_bookings(self) -> list[int]:
        """Bookings during which a job held GPUs of their node (ledger rules 2 and 3)."""
        broken = []
        for b in self.bookings:
            runs = self.runs_by_node.get(b.node_id, ())
            if any(start < b.end and b.start < end for start, end in runs):
                broken.append(b.id)
        return broken


def _booking(b: SimBooking, topology: Topology) -> Booking:
    node = topology.node(b.node_id)
    if node is None:
        raise ValueError(f"booking {b.id}: no node {b.node_id!r} in the cluster")
    return Booking(
        id=b.id,
        node_id=b.node_id,
        gpu_ids=tuple(g.id for g in node.gpus),
        start=SIM_EPOCH + b.start_s,
        end=SIM_EPOCH + b.end_s,
        user=b.user,
        label=b.user,
    )
