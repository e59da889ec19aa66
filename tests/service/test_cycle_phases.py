"""The cycle's numbered phases against fake ports, without a database: each phase timed on an
injected monotonic clock, the retry loop, the publish phase (PLAN_APPLIED, preemption
signals, metrics, notices logged once), the housekeeping and positions cadences, and the
background loop woken by the bus and by other processes' versions."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from procplan.core.jobs import Job, Notice, Plan, Policy, Snapshot
from procplan.core.model import Topology
from procplan.core.timeutil import Instant
from procplan.service.cycle import MAX_RETRIES, Planner, Scheduler
from procplan.service.cycle_ports import ApplyResult, CycleClock, Phase
from procplan.service.events import Event, EventBus
from procplan.testing import FakeClock

NOW = 1_795_428_000
MS = 0.001


class TickingClock:
    """The cycle's Clock: a fixed instant and a monotonic clock the fakes advance."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> Instant:
        return NOW

    def monotonic(self) -> float:
        return self.t

    def spend(self, ms: float) -> None:
        self.t += ms * MS


class FakeSnapshots:
    def __init__(self, clock: TickingClock, cost_ms: float = 5) -> None:
        self.clock, self.cost_ms, self.built, self.version = clock, cost_ms, 0, 0

    def build(self, now: Instant) -> Snapshot:
        self.clock.spend(self.cost_ms)
        self.built += 1
        return Snapshot(topology=Topology(()))

    def versions(self) -> int:
        return self.version

    def has_jobs(self) -> bool:
        return True


class FakeWriter:
    """Applies scripted results in turn (the last one repeats); may raise instead."""

    def __init__(self, clock: TickingClock, *results: ApplyResult | Exception) -> None:
        self.clock, self.results = clock, list(results) or [ApplyResult()]
        self.calls: list[bool] = []

    def apply(self, plan: Plan, now: Instant, *, all_positions: bool = True) -> ApplyResult:
        self.clock.spend(7)
        self.calls.append(all_positions)
        result = self.results[min(len(self.calls) - 1, len(self.results) - 1)]
        if isinstance(result, Exception):
            raise result
        return result


class FakeHousekeeping:
    def __init__(self, clock: TickingClock) -> None:
        self.clock, self.runs = clock, 0
        self.signalled: list[Job] = []

    def run(self) -> None:
        self.clock.spend(2)
        self.runs += 1

    def signal_preempted(self, jobs: Sequence[Job]) -> None:
        self.signalled += list(jobs)


class FakeLock:
    def try_acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None


class FakeMetrics:
    def __init__(self) -> None:
        self.cycles: list[float] = []
        self.phase_rows: list[dict[Phase, float]] = []
        self.waits: list[tuple[list[Job], Instant]] = []

    def cycle(self, seconds: float) -> None:
        self.cycles.append(seconds)

    def phases(self, seconds: Mapping[Phase, float]) -> None:
        self.phase_rows.append(dict(seconds))

    def started(self, started: Sequence[Job], now: Instant) -> None:
        self.waits.append((list(started), now))


def planner(clock: TickingClock, plan: Plan) -> Planner:
    def fake_plan(snapshot: Snapshot, now: Instant, policy: Policy) -> Plan:
        clock.spend(3)
        return plan

    return fake_plan


def scheduler(
    clock: TickingClock, writer: FakeWriter, plan: Plan | None = None, **kwargs: Any
) -> tuple[Scheduler, FakeSnapshots, FakeHousekeeping, EventBus]:
    snapshots, housekeeping, bus = FakeSnapshots(clock), FakeHousekeeping(clock), EventBus()
    built = Scheduler(
        snapshots, writer, clock, FakeLock(), Policy(),
        housekeeping=housekeeping, events=bus, planner=planner(clock, plan or Plan()), **kwargs,
    )  # fmt: skip
    return built, snapshots, housekeeping, bus


def test_each_phase_is_timed_on_the_injected_clock() -> None:
    clock = TickingClock()
    metrics = FakeMetrics()
    built, _, _, bus = scheduler(
        clock, FakeWriter(clock, ApplyResult(changed=True)), metrics=metrics
    )
    bus.subscribe(Event.PLAN_APPLIED, lambda _: clock.spend(1))  # the publish phase's cost
    built.run_once()
    expected = {
        Phase.HOUSEKEEPING: 2.0,
        Phase.SNAPSHOT: 5.0,
        Phase.PLAN: 3.0,
        Phase.APPLY: 7.0,
        Phase.PUBLISH: 1.0,
    }
    assert built.stats.last_phase_ms == pytest.approx(expected)
    assert built.stats.last_plan_ms == pytest.approx(3.0)
    assert built.stats.last_cycle_ms == pytest.approx(18.0)
    assert metrics.cycles == [pytest.approx(0.018)]
    assert metrics.phase_rows[0] == pytest.approx({p: ms * MS for p, ms in expected.items()})

    built.run_once()
    assert built.stats.cycles == 2
    assert built.stats.total_phase_ms == pytest.approx({p: 2 * ms for p, ms in expected.items()})


def test_a_start_that_no_longer_fits_plans_again_and_publishes_once() -> None:
    clock = TickingClock()
    job = Job(id=1, user="ada")
    writer = FakeWriter(
        clock, ApplyResult(skipped=[2], changed=True), ApplyResult(started=[job], changed=True)
    )
    built, snapshots, _, bus = scheduler(clock, writer)
    applied: list[Event] = []
    bus.subscribe(Event.PLAN_APPLIED, applied.append)
    built.run_once()
    assert snapshots.built == 2 and len(writer.calls) == 2
    assert built.stats.last_phase_ms[Phase.SNAPSHOT] == pytest.approx(10.0)
    assert built.stats.last_phase_ms[Phase.APPLY] == pytest.approx(14.0)
    assert (built.stats.started, built.stats.skipped) == (1, 1)
    assert applied == [Event.PLAN_APPLIED]


def test_retries_are_bounded() -> None:
    clock = TickingClock()
    writer = FakeWriter(clock, ApplyResult(skipped=[2]))
    built, snapshots, _, _ = scheduler(clock, writer)
    built.run_once()
    assert snapshots.built == MAX_RETRIES


def test_the_publish_phase_signals_preemptions_and_reports_started_jobs() -> None:
    clock = TickingClock()
    started, victim = Job(id=1, user="ada"), Job(id=2, user="bob")
    metrics = FakeMetrics()
    writer = FakeWriter(clock, ApplyResult(started=[started], preempted=[victim], changed=True))
    built, _, housekeeping, _ = scheduler(clock, writer, metrics=metrics)
    built.run_once()
    assert housekeeping.signalled == [victim]
    assert metrics.waits == [([started], NOW)]


def test_nothing_applied_publishes_nothing_and_the_cycle_never_wakes_itself() -> None:
    clock = TickingClock()
    built, _, _, bus = scheduler(clock, FakeWriter(clock, ApplyResult(changed=True)))
    applied: list[Event] = []
    bus.subscribe(Event.PLAN_APPLIED, applied.append)
    built.run_once()
    assert applied == [Event.PLAN_APPLIED]
    assert not built._wakeup.is_set()  # its own PLAN_APPLIED does not wake it
    for event in (Event.JOBS_CHANGED, Event.LEDGER_CHANGED, Event.NODES_CHANGED):
        built._wakeup.clear()
        bus.publish(event)
        assert built._wakeup.is_set()

    quiet, _, _, quiet_bus = scheduler(clock, FakeWriter(clock, ApplyResult()))
    quiet_bus.subscribe(Event.PLAN_APPLIED, applied.append)
    quiet.run_once()
    assert applied == [Event.PLAN_APPLIED]


def test_what_was_applied_is_published_even_when_a_later_round_fails() -> None:
    clock = TickingClock()
    writer = FakeWriter(
        clock, ApplyResult(skipped=[2], changed=True), RuntimeError("database went away")
    )
    built, _, _, bus = scheduler(clock, writer)
    applied: list[Event] = []
    bus.subscribe(Event.PLAN_APPLIED, applied.append)
    with pytest.raises(RuntimeError):
        built.run_once()
    assert applied == [Event.PLAN_APPLIED]


def test_notices_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = TickingClock()
    notice = Notice(job_id=7, booking_id=3, at=NOW + 900)
    built, _, _, _ = scheduler(clock, FakeWriter(clock), Plan(notices=(notice,)))
    with caplog.at_level(logging.WARNING, logger="procplan.cycle"):
        for _ in range(3):
            built.run_once()
    assert [r.getMessage() for r in caplog.records].count(
        f"job 7 runs open-ended on GPUs that booking 3 claims from {NOW + 900}: "
        "it will be preempted then"
    ) == 1


def test_housekeeping_and_positions_follow_their_cadences() -> None:
    clock = TickingClock()
    writer = FakeWriter(clock)
    built, _, housekeeping, _ = scheduler(clock, writer, housekeeping_s=1.0, positions_s=2.0)
    built.run_once(housekeeping=False, all_positions=False)  # first cycle: both due
    built.run_once(housekeeping=False, all_positions=False)  # neither due
    assert housekeeping.runs == 1 and writer.calls == [True, False]
    built.run_once(all_positions=False)  # asked for explicitly
    assert housekeeping.runs == 2
    clock.spend(2000)
    built.run_once(housekeeping=False, all_positions=False)
    assert housekeeping.runs == 3 and writer.calls[-1] is True
    assert built.stats.last_phase_ms[Phase.HOUSEKEEPING] == pytest.approx(2.0)
    built.run_once(housekeeping=False, all_positions=False)
    assert built.stats.last_phase_ms[Phase.HOUSEKEEPING] == 0.0  # skipped this time


class CountingWriter:
    def __init__(self) -> None:
        self.applied = threading.Event()
        self.calls = 0

    def apply(self, plan: Plan, now: Instant, *, all_positions: bool = True) -> ApplyResult:
        self.calls += 1
        self.applied.set()
        return ApplyResult()


def test_the_loop_wakes_on_the_bus_and_on_other_processes_writes() -> None:
    bus = EventBus()
    snapshots = FakeSnapshots(TickingClock(), cost_ms=0)
    writer = CountingWriter()
    built = Scheduler(
        snapshots, writer, CycleClock(FakeClock(NOW)), FakeLock(), Policy(),
        events=bus, tick_s=60.0, probe_s=0.01,
    )  # fmt: skip
    built.start()
    try:
        assert writer.applied.wait(5)  # the first cycle runs at once
        time.sleep(0.05)
        writer.applied.clear()
        bus.publish(Event.JOBS_CHANGED)  # a write in this process
        assert writer.applied.wait(5)
        time.sleep(0.05)
        writer.applied.clear()
        snapshots.version += 1  # another process committed: the probe notices
        assert writer.applied.wait(5)
    finally:
        built.stop()
