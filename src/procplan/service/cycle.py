"""The scheduling cycle: snapshot → ``core.planner.plan`` → apply, in one background thread.

Event-driven: ``wake()`` (called after every committed job or booking write of this process)
runs a cycle after a short debounce, so a burst of submissions is planned once. Writes made by
other processes sharing the database are seen by probing the committed ``jobs_version`` and
``ledger_version`` counters every ``probe_s``; a periodic tick (``tick_s``) covers what only
time changes: lapsed leases, aging, preemption grace periods, bookings that begin.

Only the process holding the cycle lock (``store.leader.CycleLock``) plans; the others keep
trying to take the lock, so a dead leader is replaced within ``lock_retry_s``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from procplan.core.jobs import Plan, Policy
from procplan.core.planner import plan
from procplan.service.bookings import BookingService
from procplan.service.clock import Clock
from procplan.service.jobs import JobService
from procplan.service.leases import Housekeeper
from procplan.service.metrics import SchedulerMetrics
from procplan.service.nodes import NodeService
from procplan.store.leader import CycleLock

LOG = logging.getLogger("procplan.cycle")

MAX_RETRIES = 3
IDLE_SHARE = 2.0  # between event-driven cycles, at least this many times the last one's length


@dataclass(slots=True)
class CycleStats:
    """What the last cycles did and cost (for /metrics and the benchmarks)."""

    cycles: int = 0
    started: int = 0
    skipped: int = 0
    last_plan_ms: float = 0.0
    last_cycle_ms: float = 0.0
    durations_ms: list[float] = field(default_factory=list)

    def record(self, cycle_ms: float) -> None:
        self.cycles += 1
        self.last_cycle_ms = cycle_ms
        self.durations_ms.append(cycle_ms)
        if len(self.durations_ms) > 1000:
            del self.durations_ms[:500]


class Scheduler:
    """Runs cycles when woken, when another process wrote, and on every tick."""

    def __init__(
        self,
        jobs: JobService,
        bookings: BookingService,
        clock: Clock,
        lock: CycleLock,
        *,
        on_applied: Callable[[], None] = lambda: None,
        nodes: NodeService | None = None,
        metrics: SchedulerMetrics | None = None,
        debounce_s: float = 0.0005,
        min_interval_s: float = 0.01,
        housekeeping_s: float = 0.25,
        positions_s: float = 2.0,
        tick_s: float = 1.0,
        probe_s: float = 0.05,
        lock_retry_s: float = 1.0,
    ) -> None:
        self.jobs = jobs
        self.bookings = bookings
        self.clock = clock
        self.lock = lock
        self.policy: Policy = jobs.settings.policy
        self.housekeeper = Housekeeper(jobs, clock)
        self.nodes = nodes
        self.metrics = metrics
        self.stats = CycleStats()
        self._on_applied = on_applied
        self._debounce_s = debounce_s
        self._min_interval_s = min_interval_s
        self._housekeeping_s = housekeeping_s
        self._next_housekeeping = 0.0
        self._positions_s = positions_s
        self._next_positions = 0.0
        self._last_cycle = 0.0
        self._tick_s = tick_s
        self._probe_s = probe_s
        self._lock_retry_s = lock_retry_s
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: tuple[int, int] = (-1, -1)
        self._announced: set[tuple[int, int]] = set()

    # ---- one cycle -----------------------------------------------------------------------

    def run_once(self, *, housekeeping: bool = True, all_positions: bool = True) -> Plan:
        """Housekeeping, then plan and apply until the plan sticks (bounded retries).

        The background loop skips housekeeping (leases, PIDs, grace periods: all deadlines in
        whole seconds) when it ran less than ``housekeeping_s`` ago, so a burst of submissions
        does not re-read the lease table for every cycle. Likewise it writes queue positions
        deep in the queue only every ``positions_s`` (see ``JobMirror.changed_pending``).
        """
        began = time.perf_counter()
        if housekeeping or began >= self._next_housekeeping:
            self.housekeeper.run()
            if self.nodes is not None:
                self.nodes.check_liveness()
                self.nodes.maintain()
            self._next_housekeeping = began + self._housekeeping_s
        result = Plan()
        for _ in range(MAX_RETRIES):
            now = self.clock.now()
            snapshot = self.jobs.jobs.snapshot(now, self.bookings.topology(), self.policy)
            if self.nodes is not None:
                states, foreign, batch = self.nodes.planner_view(now)
                snapshot = dataclasses.replace(
                    snapshot, node_states=states, foreign_gpus=foreign, batch_nodes=batch
                )
            planned_at = time.perf_counter()
            result = plan(snapshot, now, self.policy)
            self.stats.last_plan_ms = (time.perf_counter() - planned_at) * 1000
            if began >= self._next_positions:
                all_positions = True
            applied = self.jobs.jobs.apply(
                result, now, self.jobs.settings.lease_ttl_s, all_positions=all_positions
            )
            if all_positions:
                self._next_positions = began + self._positions_s
            self.stats.started += len(applied.started)
            if self.metrics is not None and applied.started:
                self.metrics.started(applied.started, now)
            self.stats.skipped += len(applied.skipped)
            if applied.changed:
                self._on_applied()
            if applied.preempted:
                self.housekeeper.signal_preempted(applied.preempted)
            self._announce(result)
            if not applied.skipped:
                break
            LOG.info("cycle: %d start(s) no longer fit; planning again", len(applied.skipped))
        self._seen = self._versions()
        elapsed = time.perf_counter() - began
        self.stats.record(elapsed * 1000)
        if self.metrics is not None:
            self.metrics.cycle(elapsed)
        return result

    def _announce(self, result: Plan) -> None:
        """Log each warning of an upcoming foreign booking once (the planner repeats them every
        cycle while the booking is near; delivering them to people comes with notifications)."""
        for notice in result.notices:
            key = (notice.job_id, notice.booking_id)
            if key in self._announced:
                continue
            self._announced.add(key)
            LOG.warning(
                "job %s runs open-ended on GPUs that booking %s claims from %s: "
                "it will be preempted then",
                notice.job_id,
                notice.booking_id,
                notice.at,
            )
        if len(self._announced) > 10_000:
            self._announced.clear()

    # ---- the background loop -------------------------------------------------------------

    def wake(self) -> None:
        """Something changed in this process: run a cycle soon (debounced)."""
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
        next_tick = 0.0
        while not self._stop.is_set():
            if not self.lock.try_acquire():
                self._stop.wait(self._lock_retry_s)
                continue
            now = time.monotonic()
            due = now >= next_tick or self._wakeup.is_set() or self._others_wrote()
            if due:
                self._wakeup.clear()
                self._safe_cycle()
                next_tick = time.monotonic() + self._tick_s
                continue
            if self._wakeup.wait(min(self._probe_s, max(next_tick - now, 0.0))):
                # Let a burst of submissions land first, and under a stream of them leave at
                # least twice the last cycle's duration between cycles (and ``min_interval_s``):
                # each cycle replans the whole queue, so with a long queue and a stream of
                # submissions the cycle would otherwise take a whole core from the API.
                since_last = time.monotonic() - self._last_cycle
                gap = max(self._min_interval_s, IDLE_SHARE * self.stats.last_cycle_ms / 1000)
                time.sleep(max(self._debounce_s, gap - since_last))

    def _safe_cycle(self) -> None:
        self._last_cycle = time.monotonic()
        try:
            self.run_once(housekeeping=False, all_positions=False)
        except Exception:  # a failed cycle must not kill the scheduler: log, retry next tick
            LOG.exception("scheduling cycle failed")

    def _versions(self) -> tuple[int, int]:
        return self.jobs.version(), self.bookings.bookings.mirror.committed_version()

    def _others_wrote(self) -> bool:
        return self._versions() != self._seen
