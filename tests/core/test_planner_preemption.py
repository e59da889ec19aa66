"""Preemption: minimal victim sets, minimum runtime, borrowed jobs first, only when it helps,
no second round for the same job; foreign bookings stop open-ended jobs, with notices."""

from __future__ import annotations

from dataclasses import replace

from planner_kit import NOW, POLICY, booking, job, run, running, snap, started, topo

from procplan.core.jobs import Blockers, Notice, PendingInfo, Policy, Reason, Tenant
from procplan.core.timeutil import HOUR, MINUTE

GRACE = POLICY.preempt_grace_s
EIGHT = [f"n0-g{i}" for i in range(8)]


def victims(result: object) -> dict[int, int | None]:
    return {p.job_id: p.for_job_id for p in result.preemptions}  # type: ignore[attr-defined]


def full_node(*sizes: int, priority: int = 0, **fields: object) -> list:  # type: ignore[type-arg]
    """Running jobs filling n0 in order, ids 50, 51, ...; later ids started later."""
    jobs, first = [], 0
    for i, size in enumerate(sizes):
        gpus = EIGHT[first : first + size]
        first += size
        jobs.append(
            running(50 + i, gpus, priority=priority, started_at=NOW - HOUR + i * 60, **fields)
        )
    return jobs


def test_preempts_the_fewest_victims() -> None:
    busy = full_node(4, 2, 2)
    result = run(snap(topo(8), [job(1, priority=500, gpu_count=4)], busy))
    assert victims(result) == {50: 1}  # one 4-GPU job rather than two 2-GPU ones
    assert result.pending[1] == PendingInfo(Reason.PREEMPTING, 1, NOW + GRACE, Blockers(jobs=(50,)))
    assert not result.starts


def test_among_equal_sets_the_fewest_gpus_then_the_youngest() -> None:
    busy = full_node(4, 2, 2)
    result = run(snap(topo(8), [job(1, priority=500, gpu_count=2)], busy))
    assert victims(result) == {52: 1}  # a 2-GPU job, the one that started last


def test_lowest_priority_victims_first() -> None:
    busy = [
        running(50, EIGHT[:4], priority=50, started_at=NOW - HOUR),
        running(51, EIGHT[4:], priority=10, started_at=NOW - HOUR),
    ]
    result = run(snap(topo(8), [job(1, priority=500, gpu_count=4)], busy))
    assert victims(result) == {51: 1}


def test_never_preempts_equal_or_higher_priority() -> None:
    busy = full_node(8, priority=500)
    result = run(snap(topo(8), [job(1, priority=500, gpu_count=1)], busy))
    assert not result.preemptions
    assert result.pending[1].reason is Reason.RESOURCES


def test_min_runtime_protects_young_jobs() -> None:
    policy = replace(POLICY, min_runtime_s=10 * MINUTE)
    busy = [
        running(50, EIGHT[:4], started_at=NOW - 5 * MINUTE),  # too young
        running(51, EIGHT[4:], started_at=NOW - 20 * MINUTE),
    ]
    result = run(snap(topo(8), [job(1, priority=500, gpu_count=4)], busy), policy=policy)
    assert victims(result) == {51: 1}
    result = run(snap(topo(8), [job(1, priority=500, gpu_count=8)], busy), policy=policy)
    assert not result.preemptions


def test_borrowed_jobs_of_another_tenant_go_first_even_at_higher_priority() -> None:
    tenants = [Tenant("lab", max_gpus=4), Tenant("lender", max_gpus=4)]
    busy = [
        running(50, EIGHT[:4], tenant="lender", priority=50),
        running(51, EIGHT[4:], tenant="lender", priority=900, borrowed=True),
    ]
    pending = [job(1, tenant="lab", priority=100, gpu_count=4)]
    result = run(snap(topo(8), pending, busy, tenants=tenants))
    assert victims(result) == {51: 1}


def test_borrowed_jobs_are_not_fair_game_for_a_tenant_over_its_own_quota() -> None:
    tenants = [Tenant("lab", max_gpus=2, allow_borrow=False), Tenant("lender")]
    busy = [running(51, EIGHT, tenant="lender", priority=900, borrowed=True)]
    pending = [job(1, tenant="lab", priority=100, gpu_count=4)]
    result = run(snap(topo(8), pending, busy, tenants=tenants))
    assert not result.preemptions
    assert result.pending[1].reason is Reason.QUOTA_GPUS


def test_no_preemption_when_it_would_not_make_the_job_fit() -> None:
    # One GPU is held by a higher-priority job: freeing the other seven is not enough.
    busy = [running(50, EIGHT[:7], priority=0), running(51, EIGHT[7:], priority=900)]
    result = run(snap(topo(8), [job(1, priority=500, gpu_count=8)], busy))
    assert not result.preemptions
    assert result.pending[1].reason is Reason.RESOURCES


def test_no_preemption_when_a_foreign_booking_would_block_the_job_anyway() -> None:
    busy = [running(50, ["n0-g0"], priority=0)]
    bookings = [booking(7, ["n0-g0"], NOW + 10 * MINUTE, NOW + 3 * HOUR)]
    result = run(snap(topo(1), [job(1, priority=500)], busy, bookings))
    assert not result.preemptions


def test_no_preemption_when_the_gpus_free_up_within_the_grace_period() -> None:
    busy = [running(50, ["n0-g0"], started_at=NOW - HOUR, time_limit_s=HOUR + 10)]
    result = run(snap(topo(1), [job(1, priority=500)], busy))
    assert not result.preemptions
    assert result.pending[1].estimated_start == NOW + 10


def test_preemption_can_be_switched_off_by_policy_or_tenant() -> None:
    busy = full_node(8)
    pending = [job(1, priority=500, tenant="meek", gpu_count=2)]
    off = run(snap(topo(8), pending, busy), policy=replace(POLICY, preemption=False))
    assert not off.preemptions
    meek = [Tenant("meek", allow_preemption=False)]
    assert not run(snap(topo(8), pending, busy, tenants=meek)).preemptions


def test_only_the_top_blocked_job_preempts_and_its_gpus_are_reserved() -> None:
    busy = full_node(2, 2, 2, 2)
    pending = [
        job(1, priority=500, gpu_count=2),
        job(2, priority=400, gpu_count=2),
        job(3, priority=300, gpu_count=2, time_limit_s=60),  # short, but must not take them
    ]
    result = run(snap(topo(8), pending, busy))
    assert victims(result) == {53: 1}
    assert not result.starts
    assert result.pending[1] == PendingInfo(Reason.PREEMPTING, 1, NOW + GRACE, Blockers(jobs=(53,)))
    assert result.pending[2].reason is Reason.RESOURCES


def test_no_second_round_while_victims_are_stopping() -> None:
    # The previous cycle preempted job 53 for job 1; it stops at NOW + 10.
    stopping = running(53, EIGHT[6:], preempt_at=NOW - GRACE + 10)
    busy = [*full_node(2, 2, 2), stopping]
    result = run(snap(topo(8), [job(1, priority=500, gpu_count=2)], busy))
    assert not result.preemptions
    assert result.pending[1] == PendingInfo(Reason.PREEMPTING, 1, NOW + 10, Blockers(jobs=(53,)))


def test_preempted_gpus_are_handed_out_only_after_the_grace_period() -> None:
    busy = full_node(8)
    result = run(snap(topo(8), [job(1, priority=500, gpu_count=8)], busy))
    assert victims(result) == {50: 1}
    assert not result.starts  # the preemptor starts in a later cycle, when they are gone


def test_multi_node_preemptor_gets_victims_on_distinct_nodes() -> None:
    busy = [
        running(50, [f"n0-g{i}" for i in range(4)], priority=0),
        running(51, [f"n1-g{i}" for i in range(4)], priority=0),
        running(52, [f"n2-g{i}" for i in range(4)], priority=800),
    ]
    result = run(snap(topo(4, 4, 4), [job(1, priority=500, gpu_count=8, nodes=2)], busy))
    assert victims(result) == {50: 1, 51: 1}


# -- foreign bookings and open-ended jobs -------------------------------------------------


def test_foreign_booking_that_began_preempts_the_open_ended_job() -> None:
    squatter = running(50, ["n0-g0"], user="bob", time_limit_s=None)
    bookings = [booking(7, ["n0-g0"], NOW - 5, NOW + HOUR, user="carol")]
    result = run(snap(topo(1), [job(1, user="carol")], [squatter], bookings))
    [stop] = result.preemptions
    assert (stop.job_id, stop.for_job_id) == (50, None)
    assert "booking 7" in stop.reason
    # carol's job waits for the grace period, not for the booking's end.
    assert result.pending[1].estimated_start == NOW + GRACE


def test_own_booking_does_not_preempt_the_owners_open_ended_job() -> None:
    mine = running(50, ["n0-g0"], user="carol", time_limit_s=None)
    bookings = [booking(7, ["n0-g0"], NOW - 5, NOW + HOUR, user="carol")]
    result = run(snap(topo(1), running_jobs=[mine], bookings=bookings))
    assert not result.preemptions and not result.notices


def test_open_ended_job_is_warned_ahead_of_a_foreign_booking() -> None:
    policy = replace(POLICY, booking_warning_s=10 * MINUTE)
    squatter = running(50, ["n0-g0", "n0-g1"], user="bob", time_limit_s=None)
    bookings = [
        booking(7, ["n0-g1"], NOW + 5 * MINUTE, NOW + HOUR),
        booking(8, ["n0-g0"], NOW + 30 * MINUTE, NOW + HOUR),  # beyond the warning
    ]
    result = run(snap(topo(2), running_jobs=[squatter], bookings=bookings), policy=policy)
    assert result.notices == (Notice(50, 7, NOW + 5 * MINUTE),)
    assert not result.preemptions


def test_jobs_already_stopping_are_not_preempted_or_warned_again() -> None:
    stopping = running(50, ["n0-g0"], user="bob", time_limit_s=None, preempt_at=NOW - 5)
    bookings = [booking(7, ["n0-g0"], NOW - 5, NOW + HOUR)]
    result = run(snap(topo(1), running_jobs=[stopping], bookings=bookings))
    assert not result.preemptions and not result.notices


def test_limited_jobs_are_never_preempted_for_bookings() -> None:
    mine = running(50, ["n0-g0"], user="bob", time_limit_s=HOUR, started_at=NOW - 10)
    bookings = [booking(7, ["n0-g0"], NOW + 5 * MINUTE, NOW + HOUR)]
    result = run(snap(topo(1), running_jobs=[mine], bookings=bookings))
    assert not result.preemptions and not result.notices


def test_higher_priority_open_ended_preemptor_respects_bookings() -> None:
    policy = Policy(weight_age=0.0, weight_fairshare=0.0, min_runtime_s=0)
    busy = [running(50, ["n0-g0"], priority=0), running(51, ["n1-g0"], priority=0)]
    bookings = [booking(7, ["n0-g0"], NOW + HOUR, NOW + 2 * HOUR)]
    pending = [job(1, priority=500, time_limit_s=None)]
    result = run(snap(topo(1, 1), pending, busy, bookings), policy=policy)
    assert victims(result) == {51: 1}  # n1 has no booking ahead: the farthest is better
    assert started(result) == {}
