"""Every reason a pending job can show, each in a situation built for it: the code, the text
users read (``reason_text`` of the job object) and the estimated start (issue #19: reasons
that tell the truth)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from planner_kit import NOW, POLICY, booking, job, run, running, snap, topo

from procplan.core.jobs import (
    REASON_TEXT,
    Job,
    JobKind,
    Policy,
    Reason,
    Snapshot,
    StatusChange,
    Tenant,
)
from procplan.core.timeutil import HOUR, MINUTE
from procplan.wire.jobs import job_json

GRACE = POLICY.preempt_grace_s
ALL = [f"n0-g{i}" for i in range(4)]
CLASS_200 = {"priority": 200}


def busy_all(**fields: object) -> list[Job]:
    """bob's job on all four GPUs of n0 until NOW + 3 h."""
    return [running(9, ALL, time_limit_s=4 * HOUR, **fields)]


def situation(name: str) -> tuple[Snapshot, Policy]:
    """The snapshot (and policy) in which job 1 waits for reason ``name``."""
    t = topo(4)
    if name == "Resources":
        return snap(t, [job(1)], busy_all()), POLICY
    if name == "Priority":  # GPUs free now, but promised to a higher class from NOW + 3 h
        pending = [job(2, gpu_count=4, **CLASS_200), job(1, time_limit_s=4 * HOUR)]
        held = [running(9, ALL[:2], time_limit_s=4 * HOUR)]
        return snap(t, pending, held), replace(POLICY, preemption=False)
    if name == "Booked":
        return snap(t, [job(1)], bookings=[booking(5, ALL, NOW - HOUR, NOW + 2 * HOUR)]), POLICY
    if name == "QuotaGpus":
        team = Tenant("team", max_gpus=1, allow_borrow=False)
        mine = [running(9, ALL[:1], user="alice", tenant="team")]
        return snap(t, [job(1, tenant="team")], mine, tenants=[team]), POLICY
    if name == "QuotaJobs":
        team = Tenant("team", max_jobs=1)
        mine = [running(9, ALL[:1], user="alice", tenant="team")]
        return snap(t, [job(1, tenant="team")], mine, tenants=[team]), POLICY
    if name == "Preempting":
        return snap(t, [job(1, gpu_count=4, **CLASS_200)], busy_all()), POLICY
    if name == "MinRuntime":
        young = busy_all(started_at=NOW - MINUTE)
        policy = replace(POLICY, min_runtime_s=10 * MINUTE)
        return snap(t, [job(1, gpu_count=4, **CLASS_200)], young), policy
    if name == "NodeDown":
        return snap(t, [job(1)], down=["n0"]), POLICY
    if name == "NoAgent":
        return replace(snap(t, [job(1, kind=JobKind.BATCH)]), batch_nodes=frozenset()), POLICY
    if name == "Unsatisfiable":
        return snap(t, [job(1, gpu_count=8)]), POLICY
    if name == "BookingInactive":
        later = booking(5, ALL[:1], NOW + HOUR, NOW + 2 * HOUR, user="alice")
        return snap(t, [job(1, booking_id=5)], bookings=[later]), POLICY
    raise AssertionError(name)


# reason -> the estimated start it must carry (``None``: none is promised).
EXPECTED = {
    Reason.RESOURCES: NOW + 3 * HOUR,  # when bob's job's limit runs out
    Reason.PRIORITY: NOW + 4 * HOUR,  # after the higher job's reserved hour
    Reason.BOOKED: NOW + 2 * HOUR,  # when carol's booking ends
    Reason.QUOTA_GPUS: None,
    Reason.QUOTA_JOBS: None,
    Reason.PREEMPTING: NOW + GRACE,  # the victims' grace period
    Reason.MIN_RUNTIME: NOW - MINUTE + 10 * MINUTE + GRACE,  # min runtime, then the grace
    Reason.NODE_DOWN: None,
    Reason.NO_AGENT: None,
    Reason.UNSATISFIABLE: None,
    Reason.BOOKING_INACTIVE: NOW + HOUR,  # when the booking it names begins
}

# reason -> what job 1 is shown to wait for (``waits_for`` of the job object).
WAITS = {
    Reason.RESOURCES: {"jobs": ["9"], "bookings": []},  # bob's job on the GPUs
    Reason.PRIORITY: {"jobs": ["2", "9"], "bookings": []},  # bob's, then the reservation
    Reason.BOOKED: {"jobs": [], "bookings": [5]},  # carol's booking
    Reason.QUOTA_GPUS: {"jobs": ["9"], "bookings": []},  # the tenant's running job
    Reason.QUOTA_JOBS: {"jobs": ["9"], "bookings": []},
    Reason.PREEMPTING: {"jobs": ["9"], "bookings": []},  # the victim
    Reason.MIN_RUNTIME: {"jobs": ["9"], "bookings": []},  # the victim-to-be
    Reason.NODE_DOWN: {"jobs": [], "bookings": []},
    Reason.NO_AGENT: {"jobs": [], "bookings": []},
    Reason.UNSATISFIABLE: {"jobs": [], "bookings": []},
    Reason.BOOKING_INACTIVE: {"jobs": [], "bookings": [5]},  # its own booking
}


@pytest.mark.parametrize("reason", list(EXPECTED), ids=lambda r: r.value)
def test_each_reason_has_its_situation_text_and_estimate(reason: Reason) -> None:
    snapshot, policy = situation(reason.value)
    result = run(snapshot, policy=policy)
    assert 1 not in {s.job_id for s in result.starts}
    info = result.pending[1]
    assert (info.reason, info.estimated_start) == (reason, EXPECTED[reason])
    waiting = next(j for j in snapshot.pending if j.id == 1)
    change: StatusChange = {
        "reason": reason, "estimated_start": info.estimated_start, "waits_for": info.waits_for,
    }  # fmt: skip
    shown = job_json(waiting.changed(change), snapshot.topology, NOW)
    assert shown["reason"] == reason.value
    assert shown["reason_text"] == REASON_TEXT[reason]
    assert shown["waits_for"] == WAITS[reason]


def test_a_job_the_cycle_has_not_seen_is_held() -> None:
    shown = job_json(job(1).changed({"reason": Reason.HELD}), topo(4), NOW)
    assert (shown["reason"], shown["reason_text"]) == ("Held", "not scheduled yet")
    assert shown["estimated_start"] is None


def test_every_reason_has_a_text() -> None:
    assert set(REASON_TEXT) == set(Reason)
    assert set(EXPECTED) | {Reason.HELD} == set(Reason) == set(WAITS) | {Reason.HELD}
