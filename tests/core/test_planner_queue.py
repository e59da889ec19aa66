"""The queue pass: order, quotas and borrowing, backfill that never delays the top job,
reservation depth, pending reasons, positions and estimates, determinism."""

from __future__ import annotations

from dataclasses import replace

from planner_kit import NOW, POLICY, booking, job, running, snap, started, topo
from planner_kit import run as run_with

from procplan.core.jobs import Blockers, PendingInfo, Plan, Policy, Reason, Snapshot, Tenant
from procplan.core.timeutil import HOUR

NO_PREEMPTION = replace(POLICY, preemption=False)


def run(state: Snapshot, policy: Policy = NO_PREEMPTION) -> Plan:
    """Queue behaviour alone: preemption is tested in test_planner_preemption."""
    return run_with(state, policy=policy)  # type: ignore[no-any-return]


def test_higher_priority_job_gets_the_gpus() -> None:
    state = snap(topo(1), [job(1, priority=100), job(2, priority=500)])
    result = run(state)
    assert started(result) == {2: ("n0-g0",)}
    assert result.pending == {1: PendingInfo(Reason.RESOURCES, 1, NOW + HOUR, Blockers(jobs=(2,)))}


def test_equal_priority_is_first_come_first_served() -> None:
    state = snap(topo(1), [job(2, submitted_at=NOW - 5), job(1, submitted_at=NOW - 5)])
    assert started(run(state)) == {1: ("n0-g0",)}


# -- quotas -------------------------------------------------------------------------------


def test_max_jobs_counts_running_jobs_and_this_plans_starts() -> None:
    tenants = [Tenant("lab", max_jobs=2, allow_borrow=True)]
    busy = [running(90, ["n0-g0"], tenant="lab")]
    pending = [job(1, tenant="lab"), job(2, tenant="lab"), job(3, tenant="other")]
    result = run(snap(topo(4), pending, busy, tenants=tenants))
    assert set(started(result)) == {1, 3}
    assert result.pending == {2: PendingInfo(Reason.QUOTA_JOBS, 1, None, Blockers(jobs=(1, 90)))}


def test_max_gpus_without_borrowing_waits_with_quota_gpus() -> None:
    tenants = [Tenant("lab", max_gpus=2, allow_borrow=False)]
    pending = [job(1, tenant="lab", gpu_count=2), job(2, tenant="lab")]
    result = run(snap(topo(4), pending, tenants=tenants))
    assert set(started(result)) == {1}
    assert result.pending[2].reason is Reason.QUOTA_GPUS


def test_borrowing_starts_beyond_quota_on_idle_gpus_marked_borrowed() -> None:
    tenants = [Tenant("lab", max_gpus=2, allow_borrow=True)]
    pending = [job(1, tenant="lab", gpu_count=2), job(2, tenant="lab", gpu_count=2)]
    result = run(snap(topo(4), pending, tenants=tenants))
    flags = {s.job_id: s.borrowed for s in result.starts}
    assert flags == {1: False, 2: True}


def test_borrowed_jobs_count_against_the_quota() -> None:
    tenants = [Tenant("lab", max_gpus=2, allow_borrow=True)]
    lent = running(90, ["n0-g0", "n0-g1"], tenant="lab", borrowed=True)
    result = run(snap(topo(4), [job(1, tenant="lab")], [lent], tenants=tenants))
    assert [s.borrowed for s in result.starts] == [True]


def test_borrowing_never_takes_gpus_reserved_for_a_higher_job() -> None:
    # The 2-GPU top job waits for n0 (one GPU busy for an hour): n0-g1 is reserved for it.
    # A borrower may not take n0-g1 even for a short job that would end... after the
    # reservation starts, and there is nothing else idle: it waits behind the higher job
    # (``Priority``; not ``QuotaGpus``: it is allowed to borrow, issue #19).
    tenants = [Tenant("lab", max_gpus=0, allow_borrow=True)]
    busy = [running(90, ["n0-g0"], started_at=NOW - HOUR, time_limit_s=2 * HOUR)]
    pending = [
        job(1, priority=500, gpu_count=2),
        job(2, tenant="lab", time_limit_s=2 * HOUR),
    ]
    result = run(snap(topo(2), pending, busy, tenants=tenants))
    assert not result.starts
    assert result.pending[1] == PendingInfo(Reason.RESOURCES, 1, NOW + HOUR, Blockers(jobs=(90,)))
    assert result.pending[2].reason is Reason.PRIORITY


def test_resources_not_quota_gpus_when_allowed_to_borrow_and_nothing_is_idle() -> None:
    # Over quota but allowed to borrow: what it waits for is a free GPU (issue #19).
    tenants = [Tenant("lab", max_gpus=1, allow_borrow=True)]
    busy = [running(90, ["n0-g0"], tenant="lab")]
    result = run(snap(topo(1), [job(1, tenant="lab")], busy, tenants=tenants))
    assert result.pending[1].reason is Reason.RESOURCES


# -- backfill -----------------------------------------------------------------------------


def test_backfill_fills_the_gap_but_never_delays_the_top_job() -> None:
    # n0: g0 busy for 1 h more, g1 free. Top job needs both GPUs: reserved at NOW + 1 h.
    busy = [running(90, ["n0-g0"], started_at=NOW - HOUR, time_limit_s=2 * HOUR)]
    pending = [
        job(1, priority=500, gpu_count=2),
        job(2, time_limit_s=2 * HOUR),  # would overlap the reservation: waits
        job(3, time_limit_s=HOUR),  # ends exactly when the reservation begins: starts
    ]
    result = run(snap(topo(2), pending, busy))
    assert started(result) == {3: ("n0-g1",)}
    assert result.pending[1] == PendingInfo(Reason.RESOURCES, 1, NOW + HOUR, Blockers(jobs=(90,)))
    assert result.pending[2].reason is Reason.PRIORITY
    assert result.pending[2].estimated_start == NOW + 2 * HOUR


def test_without_backfill_nothing_passes_the_first_blocked_job() -> None:
    """``Policy.backfill`` off is strict order (Slurm's sched/builtin, the simulator's FIFO):
    job 3 would fit beside the reservation, but waits behind the blocked top job."""
    busy = [running(90, ["n0-g0"], started_at=NOW - HOUR, time_limit_s=2 * HOUR)]
    pending = [job(1, priority=500, gpu_count=2), job(3, time_limit_s=HOUR)]
    strict = replace(POLICY, backfill=False, preemption=False)
    result = run_with(snap(topo(2), pending, busy), policy=strict)
    assert started(result) == {}
    assert result.pending[3].reason is Reason.PRIORITY
    assert result.pending[1].estimated_start == NOW + HOUR


def test_open_ended_jobs_do_not_backfill_onto_reserved_gpus() -> None:
    busy = [running(90, ["n0-g0"], started_at=NOW - HOUR, time_limit_s=2 * HOUR)]
    pending = [job(1, priority=500, gpu_count=2), job(2, time_limit_s=None)]
    result = run(snap(topo(2), pending, busy))
    assert not result.starts
    # It could start on n0-g1 now but for the reservation; it may start once that ends.
    assert result.pending[2] == PendingInfo(
        Reason.PRIORITY, 2, NOW + 2 * HOUR, Blockers(jobs=(1, 90))
    )


def test_estimates_follow_reservations_in_priority_order() -> None:
    busy = [running(90, ["n0-g0", "n0-g1"], started_at=NOW - HOUR, time_limit_s=2 * HOUR)]
    pending = [job(1, priority=300, gpu_count=2), job(2, priority=200), job(3, priority=100)]
    result = run(snap(topo(2), pending, busy))
    assert result.pending[1] == PendingInfo(Reason.RESOURCES, 1, NOW + HOUR, Blockers(jobs=(90,)))
    assert result.pending[2] == PendingInfo(
        Reason.RESOURCES, 2, NOW + 2 * HOUR, Blockers(jobs=(1, 90))
    )
    assert result.pending[3] == PendingInfo(
        Reason.RESOURCES, 3, NOW + 2 * HOUR, Blockers(jobs=(1, 90))
    )


def test_only_reserve_depth_blocked_jobs_get_an_estimate() -> None:
    busy = [running(90, ["n0-g0"], started_at=NOW - HOUR, time_limit_s=2 * HOUR)]
    pending = [job(i, priority=1000 - i) for i in range(1, 6)]
    result = run(snap(topo(1), pending, busy), policy=replace(NO_PREEMPTION, reserve_depth=2))
    estimates = [result.pending[i].estimated_start for i in range(1, 6)]
    assert estimates == [NOW + HOUR, NOW + 2 * HOUR, None, None, None]
    assert [result.pending[i].position for i in range(1, 6)] == [1, 2, 3, 4, 5]


def test_positions_count_only_jobs_still_pending() -> None:
    pending = [job(1, priority=500), job(2, priority=400, gpu_count=2), job(3, priority=300)]
    result = run(snap(topo(2), pending))
    # 1 starts on n0-g0, 2 needs both GPUs: blocked; 3 backfills? No: n0-g1 is reserved
    # for 2 from NOW + 1 h and 3 runs an hour: it fits exactly before it.
    assert set(started(result)) == {1, 3}
    assert result.pending == {2: PendingInfo(Reason.RESOURCES, 1, NOW + HOUR, Blockers(jobs=(1,)))}


def test_job_never_runnable_as_things_stand_has_no_estimate() -> None:
    forever = running(90, ["n0-g0"], time_limit_s=None)
    result = run(snap(topo(1), [job(1)], [forever]), policy=NO_PREEMPTION)
    # it waits for the open-ended job, with no end in sight
    assert result.pending[1] == PendingInfo(Reason.RESOURCES, 1, None, Blockers(jobs=(90,)))


def test_open_ended_holder_frees_when_a_foreign_booking_forces_it_off() -> None:
    forever = running(90, ["n0-g0"], user="bob", time_limit_s=None)
    bookings = [booking(7, ["n0-g0"], NOW + 2 * HOUR, NOW + 3 * HOUR, user="alice")]
    result = run(snap(topo(1), [job(1, user="alice", booking_id=None)], [forever], bookings))
    # bob is preempted when alice's booking begins (+ grace); alice's own booking is hers.
    assert result.pending[1].estimated_start == NOW + 2 * HOUR + POLICY.preempt_grace_s


def test_plan_is_deterministic() -> None:
    busy = [running(90, ["n0-g0", "n1-g1"], started_at=NOW - HOUR)]
    pending = [job(i, priority=(i * 7) % 5 * 100, gpu_count=1 + i % 3) for i in range(1, 30)]
    bookings = [booking(1, ["n1-g2"], NOW + HOUR, NOW + 2 * HOUR)]
    state = snap(topo(4, 4, 2), pending, busy, bookings)
    first = run(state)
    assert all(run(state) == first for _ in range(3))
    shuffled = replace(state, pending=tuple(reversed(state.pending)))
    assert run(shuffled) == first


def test_every_pending_job_is_reported_once() -> None:
    pending = [job(i, gpu_count=1 + i % 4) for i in range(1, 40)]
    result = run(snap(topo(4, 4), pending))
    reported = set(result.pending) | set(started(result))
    assert reported == set(range(1, 40))
    assert not set(result.pending) & set(started(result))
    assert sorted(info.position for info in result.pending.values()) == list(
        range(1, len(result.pending) + 1)
    )


def test_unknown_tenants_are_unlimited() -> None:
    pending = [job(i, tenant="not-configured", gpu_count=2) for i in range(1, 4)]
    result = run(snap(topo(8), pending, tenants=[Tenant("lab", max_gpus=1, max_jobs=1)]))
    assert set(started(result)) == {1, 2, 3}
    assert not any(s.borrowed for s in result.starts)
