"""The preemption policy of ADR 0011 as a table, and the planner's reason codes of issue #19.

Preemption only for (a) a strictly higher priority class (``priority`` plus the tenant's
tier), (b) reclaiming the preemptor's tenant's quota from another tenant's borrowed jobs, (c) a
foreign booking that begins; never between equals of one class within their quotas; borrowed
work first, waited for until its ``min_runtime_s``; at most ``max_preemptions`` per job; the
same pair never swaps GPUs twice within ``thrash_window_s``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from planner_kit import NOW, POLICY, booking, job, run, running, snap, topo

from procplan.core.jobs import REASON_TEXT, Blockers, Job, PendingInfo, Policy, Reason, Tenant
from procplan.core.timeutil import HOUR, MINUTE

GRACE = POLICY.preempt_grace_s
EIGHT = [f"n0-g{i}" for i in range(8)]
# Fair-share and age as strong as they get: they must still not justify a preemption.
FAIR = replace(POLICY, weight_fairshare=1000.0, weight_age=1000.0, max_age_s=HOUR)
TENANTS = [
    Tenant("heavy", max_gpus=8),
    Tenant("light", max_gpus=8),
    Tenant("vip", priority_tier=200),
    Tenant("lab", max_gpus=8),
    Tenant("lender", max_gpus=0, allow_borrow=True),
]


def victims(result: object) -> dict[int, int | None]:
    return {p.job_id: p.for_job_id for p in result.preemptions}  # type: ignore[attr-defined]


# (case, the running job's fields, the pending job's fields, preempted?)
RULES: list[tuple[str, dict[str, object], dict[str, object], bool]] = [
    ("equal class, other tenant, fair-share and age for the preemptor",
     {"tenant": "heavy"}, {"tenant": "light", "submitted_at": NOW - 2 * HOUR}, False),
    ("equal class, same tenant", {"tenant": "light"}, {"tenant": "light"}, False),
    ("strictly higher priority", {"tenant": "heavy"}, {"tenant": "light", "priority": 101}, True),
    ("lower priority", {"tenant": "heavy", "priority": 500}, {"tenant": "light"}, False),
    ("higher class by the tenant's tier", {"tenant": "heavy"}, {"tenant": "vip"}, True),
    ("tier outweighed by the victim's priority",
     {"tenant": "heavy", "priority": 500}, {"tenant": "vip"}, False),
    ("reclaiming quota from another tenant's borrowed job",
     {"tenant": "lender", "borrowed": True, "priority": 500}, {"tenant": "lab"}, True),
    ("borrowed job of the preemptor's own tenant", {"tenant": "lab", "borrowed": True},
     {"tenant": "lab"}, False),
    ("a job preempted max_preemptions times",
     {"tenant": "heavy", "preemptions": 3}, {"tenant": "light", "priority": 500}, False),
    ("a job preempted fewer times",
     {"tenant": "heavy", "preemptions": 2}, {"tenant": "light", "priority": 500}, True),
    ("the victim preempted the preemptor within the window", {"tenant": "heavy"},
     {"tenant": "light", "priority": 500, "preempted_by": 50,
      "last_preempted_at": NOW - 10 * MINUTE}, False),
    ("... longer ago than the window", {"tenant": "heavy"},
     {"tenant": "light", "priority": 500, "preempted_by": 50,
      "last_preempted_at": NOW - 31 * MINUTE}, True),
    ("the preemptor preempted the victim before (not a swap: the cap bounds it)",
     {"tenant": "heavy", "preempted_by": 1, "last_preempted_at": NOW - 10 * MINUTE},
     {"tenant": "light", "priority": 500}, True),
]  # fmt: skip


@pytest.mark.parametrize(("victim", "preemptor", "preempted"), [r[1:] for r in RULES],
                         ids=[r[0] for r in RULES])  # fmt: skip
def test_who_may_preempt_whom(
    victim: dict[str, object], preemptor: dict[str, object], preempted: bool
) -> None:
    busy = [running(50, EIGHT, user="bob", **victim)]
    pending = [job(1, gpu_count=8, **preemptor)]
    usage = {"light": 0.0, "heavy": 1e9, "lender": 1e9}
    result = run(snap(topo(8), pending, busy, tenants=TENANTS, usage=usage), policy=FAIR)
    assert victims(result) == ({50: 1} if preempted else {})
    expected = Reason.PREEMPTING if preempted else Reason.RESOURCES
    assert result.pending[1].reason is expected


def test_a_booking_preempts_even_a_job_at_its_preemption_cap() -> None:
    busy = [running(50, EIGHT[:2], user="bob", time_limit_s=None, preemptions=99)]
    bookings = [booking(7, EIGHT[:2], NOW - 60, NOW + HOUR)]
    result = run(snap(topo(8), [], busy, bookings))
    assert victims(result) == {50: None}


def test_a_victim_does_not_take_back_the_gpus_freed_for_its_preemptor() -> None:
    # Job 2 was preempted for job 1 a minute ago; job 1 still waits (its GPUs are free only
    # after the grace). Job 2 ranks first (fair-share) but is held back, job 1 is not.
    policy = replace(FAIR, min_runtime_s=0)
    busy = [running(50, EIGHT[:4], user="bob", tenant="heavy", priority=1000)]
    victim = job(2, tenant="light", gpu_count=4, preempted_by=1, last_preempted_at=NOW - 60)
    pending = [job(1, tenant="heavy", gpu_count=4), victim]
    usage = {"light": 0.0, "heavy": 1e9}
    result = run(snap(topo(8), pending, busy, tenants=TENANTS, usage=usage), policy=policy)
    assert [s.job_id for s in result.starts] == [1]
    assert result.pending[2] == PendingInfo(Reason.RESOURCES, 1, None, Blockers(jobs=(1,)))
    # Outside the thrash window it would start first.
    later = replace(victim, last_preempted_at=NOW - 31 * MINUTE)
    result = run(
        snap(topo(8), [pending[0], later], busy, tenants=TENANTS, usage=usage), policy=policy
    )
    assert [s.job_id for s in result.starts] == [2]


def test_two_jobs_preempted_for_each_other_do_not_hold_each_other_back() -> None:
    # Each was last preempted for the other, and both wait: holding both back would leave
    # the free GPUs idle for the whole thrash window. The queue order decides instead.
    first = job(1, gpu_count=8, preempted_by=2, last_preempted_at=NOW - 60)
    second = job(2, gpu_count=8, preempted_by=1, last_preempted_at=NOW - 90)
    result = run(snap(topo(8), [first, second], []), policy=replace(FAIR, min_runtime_s=0))
    assert [s.job_id for s in result.starts] == [1]


def test_borrowed_work_is_waited_for_not_swapped_for_an_in_quota_victim() -> None:
    # Issue #19 item 2: the borrowed job is a second short of min_runtime; the lab's own
    # lower-priority job must not be taken instead. The preemptor waits, with an estimate.
    policy = replace(POLICY, min_runtime_s=10 * MINUTE)
    young = NOW - 10 * MINUTE + 1
    busy = [
        running(50, EIGHT[:4], tenant="lab", priority=0, started_at=NOW - HOUR),
        running(51, EIGHT[4:], tenant="lender", borrowed=True, started_at=young),
    ]
    pending = [job(1, tenant="lab", gpu_count=4)]
    result = run(snap(topo(8), pending, busy, tenants=TENANTS), policy=policy)
    assert not result.preemptions
    assert result.pending[1] == PendingInfo(
        Reason.MIN_RUNTIME, 1, NOW + 1 + GRACE, Blockers(jobs=(51,))
    )
    # A second later it is of age: it, and only it, is preempted.
    result = run(snap(topo(8), pending, busy, tenants=TENANTS), now=NOW + 1, policy=policy)
    assert victims(result) == {51: 1}


def test_min_runtime_reason_for_an_urgent_job_with_young_victims() -> None:
    policy = replace(POLICY, min_runtime_s=10 * MINUTE)
    busy = [
        running(50, EIGHT[:4], started_at=NOW - 2 * MINUTE),
        running(51, EIGHT[4:], started_at=NOW - 4 * MINUTE),
    ]
    result = run(snap(topo(8), [job(1, priority=1000, gpu_count=8)], busy), policy=policy)
    assert not result.preemptions
    info = result.pending[1]
    assert info == PendingInfo(
        Reason.MIN_RUNTIME, 1, NOW + 8 * MINUTE + GRACE, Blockers(jobs=(50, 51))
    )
    assert info.reason.value == "MinRuntime"
    assert REASON_TEXT[info.reason] == (
        "waiting for lower-priority or borrowed jobs to reach their minimum runtime"
    )


def test_a_ready_victim_of_the_same_class_is_taken_rather_than_waiting() -> None:
    policy = replace(POLICY, min_runtime_s=10 * MINUTE)
    busy = [
        running(50, EIGHT[:4], started_at=NOW - 2 * MINUTE),  # young
        running(51, EIGHT[4:], started_at=NOW - HOUR),
    ]
    result = run(snap(topo(8), [job(1, priority=1000, gpu_count=4)], busy), policy=policy)
    assert victims(result) == {51: 1}
    assert result.pending[1] == PendingInfo(Reason.PREEMPTING, 1, NOW + GRACE, Blockers(jobs=(51,)))


def test_no_min_runtime_wait_when_the_gpus_free_up_sooner_anyway() -> None:
    policy = replace(POLICY, min_runtime_s=HOUR)
    busy = [running(50, EIGHT, started_at=NOW - MINUTE, time_limit_s=10 * MINUTE)]
    result = run(snap(topo(8), [job(1, priority=1000, gpu_count=8)], busy), policy=policy)
    assert not result.preemptions
    assert result.pending[1] == PendingInfo(
        Reason.RESOURCES, 1, NOW + 9 * MINUTE, Blockers(jobs=(50,))
    )


# -- reasons: "Priority" only behind a strictly higher class --------------------------------


def _behind(first: Job) -> dict[int, PendingInfo]:
    """n0 (2 GPUs) has one busy for an hour; ``first`` (2 GPUs) reserves both from then; job 2
    (1 GPU, 2 hours) would fit the idle GPU but for that reservation."""
    busy = [running(90, ["n0-g0"], priority=1000, started_at=NOW - HOUR, time_limit_s=2 * HOUR)]
    pending = [first, job(2, time_limit_s=2 * HOUR)]
    return dict(run(snap(topo(2), pending, busy)).pending)


def test_priority_reason_behind_a_strictly_higher_class() -> None:
    pending = _behind(job(1, priority=500, gpu_count=2))
    assert pending[1] == PendingInfo(Reason.RESOURCES, 1, NOW + HOUR, Blockers(jobs=(90,)))
    assert pending[2].reason is Reason.PRIORITY
    assert REASON_TEXT[Reason.PRIORITY] == "waiting behind higher-priority jobs"


def test_resources_reason_behind_an_equal_class() -> None:
    pending = _behind(job(1, gpu_count=2))  # same priority, ahead by submission (FIFO)
    assert pending[1] == PendingInfo(Reason.RESOURCES, 1, NOW + HOUR, Blockers(jobs=(90,)))
    assert pending[2].reason is Reason.RESOURCES
    assert pending[2].estimated_start == NOW + HOUR + HOUR  # after the first job's hour


def test_a_job_allowed_to_borrow_waits_for_resources_not_quota() -> None:
    tenants = [Tenant("lab", max_gpus=2, allow_borrow=True)]
    busy = [
        running(50, EIGHT[:2], tenant="lab"),
        running(51, EIGHT[2:], tenant="other"),
    ]
    requeued = job(1, tenant="lab", requeues=1, preemptions=1)
    result = run(snap(topo(8), [requeued], busy, tenants=tenants), policy=Policy(**_NO_PREEMPT))
    assert result.pending[1].reason is Reason.RESOURCES
    assert REASON_TEXT[Reason.RESOURCES] == "waiting for GPUs to free up"
    assert result.pending[1].estimated_start is None  # a borrower gets no reservation


_NO_PREEMPT: dict[str, object] = {"preemption": False, "weight_age": 0.0, "weight_fairshare": 0.0}
