"""The scheduling cycle, in numbered phases, in one background thread.

One cycle (``Scheduler.run_once``):

1. **housekeeping**: end lapsed leases, dead clients' jobs, overdue preemptions, nodes that
   stopped reporting (``Housekeeping``; at most every ``housekeeping_s`` in the loop, or at
   once after ``wake_housekeeping``: a watched client exited);
2. **snapshot**: the planner's whole input for ``now`` (``Snapshots.build``);
3. **plan**: ``core.planner.plan``, pure;
4. **apply**: one transaction that re-checks every start (``PlanWriter.apply``); a start that no
   longer fits sends the cycle back to 2 (at most ``MAX_RETRIES`` rounds);
5. **publish**: ``PLAN_APPLIED`` on the event bus when the apply wrote (the waiters and the
   agents' long polls wake), SIGTERM to preempted watched clients, metrics, and each warning
   of an upcoming foreign booking logged once.

Each phase is timed with the injected ``Clock``'s monotonic clock (``CycleStats``, /metrics).
The ports are in ``service.cycle_ports``.

Event-driven: the scheduler subscribes to every committed write of this process on the event
bus (``WAKES_CYCLE``) and runs a cycle after a short debounce, so a burst of submissions is
planned once. Writes made by other processes sharing the database are seen by probing the
committed versions (``Snapshots.versions``) every ``probe_s``; a periodic tick (``tick_s``)
covers what only time changes: lapsed leases, aging, preemption grace periods, bookings that
begin.

Only the process holding the cycle lock (``store.leader.CycleLock``) plans; the others keep
trying to take the lock, so a dead leader is replaced within ``lock_retry_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from procplan.core.jobs import Job, Notice, Plan, Policy, Snapshot
from procplan.core.planner import plan as core_plan
from procplan.core.timeutil import Instant
from procplan.service.cycle_ports import (
    ApplyResult,
    Clock,
    CycleMetrics,
    Housekeeping,
    LeaderLock,
    Phase,
    PlanWriter,
    Snapshots,
)
from procplan.service.events import Event, EventBus

LOG = logging.getLogger("procplan.cycle")

MAX_RETRIES = 3
IDLE_SHARE = 2.0  # between event-driven cycles, at least this many times the last one's length
# Every committed write of this process that may change the plan. Not ``PLAN_APPLIED``: the
# cycle publishes it itself and must not wake itself with it.
WAKES_CYCLE = frozenset(
    {Event.JOBS_CHANGED, Event.TENANTS_CHANGED, Event.LEDGER_CHANGED, Event.NODES_CHANGED}
)

Planner = Callable[[Snapshot, Instant, Policy], Plan]


def _no_phases() -> dict[Phase, float]:
    return dict.fromkeys(Phase, 0.0)


@dataclass(slots=True)
class CycleStats:
    """What the last cycles did and cost (for /metrics and the benchmarks): milliseconds per
    cycle and per phase (the last cycle's, and the sum over all cycles)."""

    cycles: int = 0
    started: int = 0
    skipped: int = 0
    last_cycle_ms: float = 0.0
    durations_ms: list[float] = field(default_factory=list)
    last_phase_ms: dict[Phase, float] = field(default_factory=_no_phases)
    total_phase_ms: dict[Phase, float] = field(default_factory=_no_phases)

    @property
    def last_plan_ms(self) -> float:
        return self.last_phase_ms[Phase.PLAN]

    def record(self, cycle_ms: float, phase_ms: Mapping[Phase, float] | None = None) -> None:
        self.cycles += 1
        self.last_cycle_ms = cycle_ms
        self.durations_ms.append(cycle_ms)
        if len(self.durations_ms) > 1000:
            del self.durations_ms[:500]
        if phase_ms is not None:
            self.last_phase_ms = {phase: phase_ms.get(phase, 0.0) for phase in Phase}
            for phase, ms in phase_ms.items():
                self.total_phase_ms[phase] += ms


class _PhaseTimer:
    """Seconds spent in each phase that ran in one cycle, on the injected monotonic clock."""

    __slots__ = ("_monotonic", "began", "seconds")

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self.began = monotonic()
        self.seconds: dict[Phase, float] = {}

    def lap(self, phase: Phase, since: float) -> float:
        """Add the time from ``since`` to now to ``phase``; returns now."""
        now = self._monotonic()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - since
        return now

    def now(self) -> float:
        return self._monotonic()


@dataclass(slots=True)
class _Outcome:
    """What the apply rounds of one cycle did, for the publish phase."""

    now: Instant = 0
    started: list[Job] = field(default_factory=list)
    preempted: list[Job] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    changed: bool = False

    def add(self, result: Plan, applied: ApplyResult, now: Instant) -> None:
        self.now = now
        self.started += applied.started
        self.preempted += applied.preempted
        self.notices += result.notices
        self.changed = self.changed or applied.changed


class _NoHousekeeping:
    def run(self) -> None:
        return None

    def signal_preempted(self, jobs: Sequence[Job]) -> None:
        return None


class Scheduler:
    """Runs cycles when woken, when another process wrote, and on every tick."""

    def __init__(
        self,
        snapshots: Snapshots,
        writer: PlanWriter,
        clock: Clock,
        lock: LeaderLock,
        policy: Policy,
        *,
        housekeeping: Housekeeping | None = None,
        events: EventBus | None = None,
        metrics: CycleMetrics | None = None,
        warn: Callable[[Sequence[Notice]], None] | None = None,
        planner: Planner = core_plan,
        debounce_s: float = 0.0005,
        min_interval_s: float = 0.01,
        housekeeping_s: float = 0.25,
        positions_s: float = 2.0,
        tick_s: float = 1.0,
        probe_s: float = 0.05,
        lock_retry_s: float = 1.0,
    ) -> None:
        self.snapshots = snapshots
        self.writer = writer
        self.clock = clock
        self.lock = lock
        self.policy = policy
        self.housekeeping: Housekeeping = housekeeping or _NoHousekeeping()
        self.events = events if events is not None else EventBus()
        self.metrics = metrics
        self.warn = warn  # tells the owners of the jobs a booking will preempt (ADR 0012)
        self.stats = CycleStats()
        self._planner = planner
        self._debounce_s = debounce_s
        self._min_interval_s = min_interval_s
        self._housekeeping_s = housekeeping_s
        self._next_housekeeping = float("-inf")
        self._positions_s = positions_s
        self._next_positions = float("-inf")
        self._last_cycle = float("-inf")
        self._tick_s = tick_s
        self._probe_s = probe_s
        self._lock_retry_s = lock_retry_s
        self._wakeup = threading.Event()
        self._housekeep = threading.Event()  # ``wake_housekeeping``: run phase 1 next cycle
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: Hashable = None
        self._announced: set[tuple[int, int]] = set()
        self.events.subscribe(WAKES_CYCLE, self.wake)

    # ---- one cycle -----------------------------------------------------------------------

    def run_once(self, *, housekeeping: bool = True, all_positions: bool = True) -> Plan:
        """One cycle, phases 1–5 (see the module docstring); returns the last plan.

        The background loop skips housekeeping (leases, PIDs, grace periods: all deadlines in
        whole seconds) when it ran less than ``housekeeping_s`` ago, so a burst of submissions
        does not re-read the lease table for every cycle. Likewise it writes queue positions
        deep in the queue only every ``positions_s`` (see ``JobMirror.changed_pending``).
        """
        timer = _PhaseTimer(self.clock.monotonic)
        began = timer.began
        asked = self._housekeep.is_set()
        if housekeeping or asked or began >= self._next_housekeeping:
            self._housekeep.clear()  # before the run: a later ask gets the next cycle
            self.housekeeping.run()  # 1
            self._next_housekeeping = began + self._housekeeping_s
            timer.lap(Phase.HOUSEKEEPING, began)
        if began >= self._next_positions:
            all_positions = True
        outcome = _Outcome()
        try:
            result = self._plan_and_apply(timer, outcome, all_positions)
        finally:
            mark = timer.now()
            self._publish(outcome)  # 5, also after a failed round: what was applied stands
            timer.lap(Phase.PUBLISH, mark)
        self._seen = self.snapshots.versions()
        if all_positions:
            self._next_positions = began + self._positions_s
        elapsed = timer.now() - began
        self.stats.record(elapsed * 1000, {p: s * 1000 for p, s in timer.seconds.items()})
        if self.metrics is not None:
            self.metrics.cycle(elapsed)
            self.metrics.phases(timer.seconds)
        return result

    def _plan_and_apply(self, timer: _PhaseTimer, outcome: _Outcome, all_positions: bool) -> Plan:
        """Phases 2–4, again while a start no longer fits (bounded)."""
        result = Plan()
        if not self.snapshots.has_jobs():
            return result
        for _ in range(MAX_RETRIES):
            now = self.clock.now()
            mark = timer.now()
            snapshot = self.snapshots.build(now)  # 2
            mark = timer.lap(Phase.SNAPSHOT, mark)
            result = self._planner(snapshot, now, self.policy)  # 3
            mark = timer.lap(Phase.PLAN, mark)
            applied = self.writer.apply(result, now, all_positions=all_positions)  # 4
            timer.lap(Phase.APPLY, mark)
            outcome.add(result, applied, now)
            self.stats.started += len(applied.started)
            self.stats.skipped += len(applied.skipped)
            if not applied.skipped:
                break
            LOG.info("cycle: %d start(s) no longer fit; planning again", len(applied.skipped))
        return result

    def _publish(self, outcome: _Outcome) -> None:
        """Phase 5: tell the waiters first (a started job's client is waiting for it)."""
        if outcome.changed:
            self.events.publish(Event.PLAN_APPLIED)
        if outcome.preempted:
            self.housekeeping.signal_preempted(outcome.preempted)
        if self.metrics is not None and outcome.started:
            self.metrics.started(outcome.started, outcome.now)
        self._announce(outcome.notices)

    def _announce(self, notices: Sequence[Notice]) -> None:
        """Log each warning of an upcoming foreign booking once, and hand the new ones to
        ``warn`` (the planner repeats them every cycle while the booking is near; the
        outbox's keys make a warning that another leader already wrote a no-op)."""
        new = []
        for notice in notices:
            key = (notice.job_id, notice.booking_id)
            if key in self._announced:
                continue
            self._announced.add(key)
            new.append(notice)
            LOG.warning(
                "job %s runs open-ended on GPUs that booking %s claims from %s: "
                "it will be preempted then",
                notice.job_id,
                notice.booking_id,
                notice.at,
            )
        if len(self._announced) > 10_000:
            self._announced.clear()
        if new and self.warn is not None:
            try:
                self.warn(new)
            except Exception:  # a lost warning must not stop scheduling; the log has it
                LOG.exception("could not write %d preemption warning(s)", len(new))

    # ---- the background loop -------------------------------------------------------------

    def wake(self, event: Event | None = None) -> None:
        """Something changed in this process: run a cycle soon (debounced). The bus calls it
        with the event; it must stay this cheap."""
        self._wakeup.set()

    def wake_housekeeping(self) -> None:
        """A watched client exited (``service.pidfd``): run a cycle soon, with housekeeping
        even if it ran less than ``housekeeping_s`` ago. Safe from any thread."""
        self._housekeep.set()
        self._wakeup.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="procplan-cycle", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the cycle in progress, without waiting (safe in a signal handler)."""
        self._stop.set()
        self._wakeup.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.lock.release()

    def _loop(self) -> None:
        monotonic = self.clock.monotonic
        next_tick = float("-inf")
        while not self._stop.is_set():
            if not self.lock.try_acquire():
                self._stop.wait(self._lock_retry_s)
                continue
            now = monotonic()
            due = now >= next_tick or self._wakeup.is_set() or self._others_wrote()
            if due:
                self._wakeup.clear()
                self._safe_cycle()
                next_tick = monotonic() + self._tick_s
                continue
            if self._wakeup.wait(min(self._probe_s, max(next_tick - now, 0.0))):
                # Let a burst of submissions land first, and under a stream of them leave at
                # least twice the last cycle's duration between cycles (and ``min_interval_s``):
                # each cycle replans the whole queue, so with a long queue and a stream of
                # submissions the cycle would otherwise take a whole core from the API.
                since_last = monotonic() - self._last_cycle
                gap = max(self._min_interval_s, IDLE_SHARE * self.stats.last_cycle_ms / 1000)
                time.sleep(max(self._debounce_s, gap - since_last))

    def _safe_cycle(self) -> None:
        self._last_cycle = self.clock.monotonic()
        try:
            self.run_once(housekeeping=False, all_positions=False)
        except Exception:  # a failed cycle must not kill the scheduler: log, retry next tick
            LOG.exception("scheduling cycle failed")

    def _others_wrote(self) -> bool:
        return self.snapshots.versions() != self._seen
