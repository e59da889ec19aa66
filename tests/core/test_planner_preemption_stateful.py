"""The preemption policy (ADR 0011) under Hypothesis: tenants with quotas, borrowing, tiers,
fair-share and aging submit, finish and wait; preempted jobs are requeued with their history
(as the service does). Every plan is checked against the rules:

- a job is preempted only by a job of a strictly higher class, or to reclaim quota from
  another tenant's borrowed job (never by one of the same class and tenant standing);
- no job is preempted more than ``max_preemptions`` times (there are no bookings here);
- borrowed jobs are taken before in-quota ones: an in-quota victim only when the borrowed
  ones (ready or not) could not free enough GPUs;
- the same pair never swaps GPUs twice within ``thrash_window_s``.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from planner_kit import NOW, as_running, node

from procplan.core.jobs import Job, JobState, Plan, Policy, Snapshot, Tenant
from procplan.core.model import Topology
from procplan.core.planner import plan
from procplan.core.timeutil import HOUR, MINUTE

TOPOLOGY = Topology((node("n0", 8),))
GPUS = tuple(g.id for g in TOPOLOGY.nodes[0].gpus)
TENANTS = {
    "a": Tenant("a", max_gpus=4, allow_borrow=True),
    "b": Tenant("b", max_gpus=4, allow_borrow=True),
    "c": Tenant("c", max_gpus=2, allow_borrow=True, priority_tier=100),
    "d": Tenant("d"),
}
POLICY = Policy(
    weight_age=300.0,
    max_age_s=HOUR,
    weight_fairshare=1000.0,
    min_runtime_s=MINUTE,
    preempt_grace_s=30,
    reserve_depth=5,
    max_preemptions=2,
    thrash_window_s=30 * MINUTE,
)
GRACE = POLICY.preempt_grace_s


class PreemptionPolicy(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.pending: dict[int, Job] = {}
        self.running: dict[int, Job] = {}
        self.work: dict[int, int] = {}  # seconds each job runs when left alone
        self.usage: dict[str, float] = {}
        self.swaps: list[tuple[int, int, int]] = []  # (preemptor, victim, when)
        self.most = 0  # the most preemptions any job has had
        self.next_id = 1
        self.replan()

    def class_of(self, job: Job) -> int:
        return job.priority + TENANTS[job.tenant].priority_tier

    def in_quota(self, tenant: str, extra: int) -> bool:
        cap = TENANTS[tenant].max_gpus
        used = sum(j.gpu_count for j in self.running.values() if j.tenant == tenant)
        return cap is None or used + extra <= cap

    def replan(self) -> None:
        snapshot = Snapshot(
            topology=TOPOLOGY,
            running=tuple(self.running.values()),
            pending=tuple(self.pending.values()),
            tenants=TENANTS,
            usage=dict(self.usage),
        )
        result = plan(snapshot, self.now, POLICY)
        self.check(result)
        for start in result.starts:
            job = self.pending.pop(start.job_id)
            self.running[job.id] = as_running(job, start, self.now)
        for stop in result.preemptions:
            victim = self.running[stop.job_id]
            self.running[victim.id] = replace(
                victim,
                preempt_at=self.now,
                preemptions=victim.preemptions + 1,
                preempted_by=stop.for_job_id,
                last_preempted_at=self.now,
            )
            self.most = max(self.most, victim.preemptions + 1)
            if stop.for_job_id is not None:
                self.swaps.append((stop.for_job_id, victim.id, self.now))
                event("reclaim" if victim.borrowed else "higher class")

    def check(self, result: Plan) -> None:
        for stop in result.preemptions:
            assert stop.for_job_id is not None  # no bookings here
            victim, preemptor = self.running[stop.job_id], self.pending[stop.for_job_id]
            assert victim.preempt_at is None
            assert victim.preemptions < POLICY.max_preemptions
            reclaim = (
                victim.borrowed
                and victim.tenant != preemptor.tenant
                and self.in_quota(preemptor.tenant, preemptor.gpu_count)
            )
            higher = self.class_of(victim) < self.class_of(preemptor)
            assert higher or reclaim, (victim, preemptor)
            assert not self.guarded(preemptor, victim)
        self.check_borrowed_first(result)

    def guarded(self, preemptor: Job, victim: Job) -> bool:
        """``victim`` preempted ``preemptor`` within the thrash window."""
        return any(
            (earlier, later) == (victim.id, preemptor.id) and self.now - at < POLICY.thrash_window_s
            for earlier, later, at in self.swaps
        )

    def check_borrowed_first(self, result: Plan) -> None:
        taken = {p.job_id for p in result.preemptions}
        if not taken:
            return
        preemptor = self.pending[next(iter(result.preemptions)).for_job_id or 0]
        if not self.in_quota(preemptor.tenant, preemptor.gpu_count):
            return
        victims = [self.running[j] for j in taken]
        if all(v.borrowed and v.tenant != preemptor.tenant for v in victims):
            return
        # An in-quota victim: the borrowed jobs of other tenants it may take could not do.
        lendable = sum(
            j.gpu_count
            for j in self.running.values()
            if j.borrowed
            and j.tenant != preemptor.tenant
            and j.preempt_at is None
            and j.preemptions < POLICY.max_preemptions
            and not self.guarded(preemptor, j)
        )
        held = sum(j.gpu_count for j in self.running.values() if j.preempt_at is None)
        held += sum(len(start.gpu_ids) for start in result.starts)  # this plan's starts
        assert len(GPUS) - held + lendable < preemptor.gpu_count, (victims, preemptor)

    # -- rules ----------------------------------------------------------------------------

    @rule(
        tenant=st.sampled_from(["a", "a", "b", "b", "c", "d"]),
        gpus=st.sampled_from([1, 2, 2, 4, 8]),
        priority=st.sampled_from([0, 0, 100, 500, 500]),
        limit=st.sampled_from([None, 10 * MINUTE, HOUR]),
        seconds=st.sampled_from([60, 5 * MINUTE, 20 * MINUTE, 2 * HOUR]),
    )
    def submit(
        self, tenant: str, gpus: int, priority: int, limit: int | None, seconds: int
    ) -> None:
        job_id = self.next_id
        self.next_id += 1
        self.pending[job_id] = Job(
            id=job_id,
            user=f"u{tenant}",
            tenant=tenant,
            priority=priority,
            gpu_count=gpus,
            time_limit_s=limit,
            submitted_at=self.now,
        )
        self.work[job_id] = seconds if limit is None else min(seconds, limit)
        self.replan()

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        del self.pending[data.draw(st.sampled_from(sorted(self.pending)))]
        self.replan()

    @rule(seconds=st.sampled_from([1, 30, 2 * MINUTE, 10 * MINUTE, HOUR]))
    def tick(self, seconds: int) -> None:
        """Time passes in steps of at most 30 s; jobs whose work is done end, and preempted
        ones are requeued after the grace period (history kept), as the service does."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + 30)
            for job in list(self.running.values()):
                assert job.started_at is not None
                ran = self.now - job.started_at
                if job.preempt_at is not None and self.now >= job.preempt_at + GRACE:
                    del self.running[job.id]
                    self.pending[job.id] = replace(
                        job,
                        state=JobState.PENDING,
                        started_at=None,
                        gpu_ids=(),
                        node_ids=(),
                        borrowed=False,
                        preempt_at=None,
                        requeues=job.requeues + 1,
                    )
                elif job.preempt_at is None and ran >= self.work[job.id]:
                    del self.running[job.id]
                    used = self.usage.get(job.tenant, 0.0)
                    self.usage[job.tenant] = used + ran * job.gpu_count
            self.replan()

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def no_job_beyond_the_cap(self) -> None:
        assert self.most <= POLICY.max_preemptions

    @invariant()
    def no_gpu_held_twice(self) -> None:
        held = [g for job in self.running.values() for g in job.gpu_ids]
        assert len(held) == len(set(held))


# Derandomized while the gap pinned below stands: random runs find it now and then (once in
# the runs of 2026-12-06), and a CI failure must mean a regression. Remove with the xfail.
PreemptionPolicy.TestCase.settings = settings(
    derandomize=True,
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPreemptionPolicy = PreemptionPolicy.TestCase


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known gap (found by the state machine above, 2026-12-06): a job records only the "
    "last job it was preempted for, so after 2 preempts 9 and 4 preempts 9 again, 9 may "
    "preempt 2 back within the thrash window; ADR 0011 promises no pair swaps twice",
)
def test_a_job_preempted_twice_does_not_take_back_from_the_first_preemptor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(globals(), "event", lambda *_: None)  # Hypothesis's, outside a test
    machine = PreemptionPolicy()
    for tenant, gpus, priority, seconds in [
        ("a", 1, 0, 60),
        ("a", 1, 0, 5 * MINUTE),
        ("c", 2, 0, 5 * MINUTE),
        ("d", 4, 0, 5 * MINUTE),
        ("d", 8, 500, 5 * MINUTE),
        ("a", 1, 0, 20 * MINUTE),
        ("a", 1, 100, 60),
        ("a", 2, 0, 60),
        ("c", 1, 0, 5 * MINUTE),
        ("a", 4, 500, 60),
    ]:
        machine.submit(tenant=tenant, gpus=gpus, priority=priority, limit=None, seconds=seconds)
    machine.tick(seconds=1)
    machine.submit(tenant="b", gpus=2, priority=100, limit=None, seconds=20 * MINUTE)
    machine.tick(seconds=HOUR)
