"""The small interfaces the scheduling cycle runs against, and their production adapters.

``service.cycle.Scheduler`` reaches no service directly: it reads a whole ``Snapshot`` from a
``Snapshots`` port, writes the plan through a ``PlanWriter``, tells time through a ``Clock``
(the planner's instant and a monotonic clock that times each phase), and leaves leases, dead
PIDs, overdue preemptions and node liveness to ``Housekeeping``. Tests drive the cycle with
fakes of these, without a database; ``server.compose`` wires the adapters below.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Protocol

from procplan.core.jobs import Job, Plan, Snapshot
from procplan.core.timeutil import Instant
from procplan.service.bookings import BookingService
from procplan.service.clock import Clock as WallClock
from procplan.service.idle_reclaim import IdleReclaim
from procplan.service.jobs import JobService
from procplan.service.leases import Housekeeper
from procplan.service.nodes import NodeService
from procplan.store.jobs_repo import ApplyResult

__all__ = [
    "ApplyResult",
    "Clock",
    "ClusterHousekeeping",
    "CycleClock",
    "CycleMetrics",
    "Housekeeping",
    "LeaderLock",
    "Phase",
    "PlanWriter",
    "Snapshots",
    "StoreSnapshots",
]


class Phase(enum.Enum):
    """The numbered phases of one cycle, in order (snapshot, plan and apply repeat when a
    start no longer fits; their times add up)."""

    HOUSEKEEPING = "housekeeping"
    SNAPSHOT = "snapshot"
    PLAN = "plan"
    APPLY = "apply"
    PUBLISH = "publish"


# ---- ports -------------------------------------------------------------------------------


class Snapshots(Protocol):
    """Builds the planner's whole input for one instant."""

    def build(self, now: Instant) -> Snapshot: ...

    def versions(self) -> Hashable:
        """The committed versions the snapshot depends on: when they move, another process
        wrote something this process's event bus did not announce."""
        ...

    def has_jobs(self) -> bool:
        """Whether any job is pending or running as of the last commit: without one, every
        plan is empty whatever the bookings, and the cycle skips building it (issue #18: a
        stream of bookings wakes the cycle once per write)."""
        ...


class PlanWriter(Protocol):
    """Writes a plan in one transaction, re-checking every start against the ledger."""

    def apply(self, plan: Plan, now: Instant, *, all_positions: bool = True) -> ApplyResult: ...


class Clock(Protocol):
    """The cycle's time: ``now`` for the planner, ``monotonic`` (seconds) for phase timings,
    cadences and the debounce."""

    def now(self) -> Instant: ...

    def monotonic(self) -> float: ...


class Housekeeping(Protocol):
    """What ends before the planner looks, and the signals to preempted clients."""

    def run(self) -> None: ...

    def signal_preempted(self, jobs: Sequence[Job]) -> None: ...


class LeaderLock(Protocol):
    """Only its holder runs cycles (``store.leader.CycleLock``)."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...


class CycleMetrics(Protocol):
    """Where the cycle reports its costs and the jobs it started (``SchedulerMetrics``)."""

    def cycle(self, seconds: float) -> None: ...

    def phases(self, seconds: Mapping[Phase, float]) -> None: ...

    def started(self, started: Sequence[Job], now: Instant) -> None: ...


# ---- production adapters -------------------------------------------------------------------


class StoreSnapshots:
    """The job mirror's queue, tenants and usage, the bookings from ``now`` on, the topology
    and the nodes' states (foreign GPUs, nodes whose agent runs batch jobs), in one Snapshot."""

    def __init__(
        self, jobs: JobService, bookings: BookingService, nodes: NodeService | None = None
    ) -> None:
        self._jobs = jobs
        self._bookings = bookings
        self._nodes = nodes

    def build(self, now: Instant) -> Snapshot:
        topology = self._bookings.topology()
        if self._nodes is None:
            return self._jobs.snapshot(now, topology)
        states, foreign, batch = self._nodes.planner_view(now)
        return self._jobs.snapshot(
            now, topology, node_states=states, foreign_gpus=foreign, batch_nodes=batch
        )

    def versions(self) -> tuple[int, int]:
        return self._jobs.version(), self._bookings.ledger_version()

    def has_jobs(self) -> bool:
        pending, running = self._jobs.active()
        return bool(pending or running)


class CycleClock:
    """The service's wall clock for ``now`` plus a monotonic clock (``time.perf_counter``)."""

    def __init__(self, wall: WallClock, monotonic: Callable[[], float] = time.perf_counter):
        self._wall = wall
        self._monotonic = monotonic

    def now(self) -> Instant:
        return self._wall.now()

    def monotonic(self) -> float:
        return self._monotonic()


class ClusterHousekeeping:
    """Leases, watched PIDs and preemption deadlines (``leases.Housekeeper``), then the nodes
    that stopped reporting and the history roll-up (``NodeService``), then idle reclaim
    (``IdleReclaim``, throttled by itself), whose releases the same cycle's plan then sees."""

    def __init__(
        self,
        leases: Housekeeper,
        nodes: NodeService | None = None,
        idle: IdleReclaim | None = None,
    ) -> None:
        self.leases = leases
        self._nodes = nodes
        self.idle = idle

    def run(self) -> None:
        self.leases.run()
        if self._nodes is not None:
            self._nodes.check_liveness()
            self._nodes.maintain()
        if self.idle is not None:
            self.idle.run()

    def signal_preempted(self, jobs: Sequence[Job]) -> None:
        self.leases.signal_preempted(jobs)
