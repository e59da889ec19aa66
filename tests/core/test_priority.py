"""Effective priority: the multifactor formula, aging by time, fair-share and queue order."""

from __future__ import annotations

import pytest
from planner_kit import NOW, job, running, snap, topo

from procplan.core.jobs import Policy, Tenant
from procplan.core.priority import (
    PriorityModel,
    age_factor,
    length_factor,
    order_pending,
    tenant_usage,
)
from procplan.core.timeutil import DAY, HOUR

ONLY_PRIORITY = Policy(weight_age=0.0, weight_fairshare=0.0, weight_size=0.0)


def ids(jobs: list) -> list[int]:  # type: ignore[type-arg]
    return [j.id for j in jobs]


@pytest.mark.parametrize(
    ("waited", "max_age", "expected"),
    [
        (0, DAY, 0.0),
        (-50, DAY, 0.0),  # submitted "in the future" (clock skew): no bonus
        (DAY // 2, DAY, 0.5),
        (DAY, DAY, 1.0),
        (10 * DAY, DAY, 1.0),  # bounded
        (5, 0, 1.0),  # no max age: every waiting job has full age
    ],
)
def test_age_factor_is_linear_in_time_and_bounded(
    waited: int, max_age: int, expected: float
) -> None:
    assert age_factor(NOW - waited, NOW, max_age) == pytest.approx(expected)


def test_higher_priority_first_then_fifo_then_id() -> None:
    pending = [
        job(1, priority=100, submitted_at=NOW - 10),
        job(2, priority=500, submitted_at=NOW),
        job(3, priority=100, submitted_at=NOW - 20),
        job(4, priority=100, submitted_at=NOW - 20),
    ]
    model = PriorityModel(snap(topo(8), pending), NOW, ONLY_PRIORITY)
    assert ids(order_pending(pending, model)) == [2, 3, 4, 1]


def test_aging_lets_an_old_job_overtake_a_slightly_higher_new_one() -> None:
    policy = Policy(weight_age=1000.0, max_age_s=DAY, weight_fairshare=0.0)
    old = job(1, priority=100, submitted_at=NOW - DAY // 2)  # 100 + 500
    new = job(2, priority=500, submitted_at=NOW)  # 500 + 0
    model = PriorityModel(snap(topo(8), [old, new]), NOW, policy)
    assert model.effective(old) == pytest.approx(600.0)
    assert ids(order_pending([old, new], model)) == [1, 2]
    # The same snapshot an hour earlier: the old job had aged less and ranks second.
    earlier = PriorityModel(snap(topo(8), [old, new]), NOW - 6 * HOUR, policy)
    assert ids(order_pending([old, new], earlier)) == [2, 1]


def test_aging_depends_on_time_not_on_how_often_it_is_computed() -> None:
    policy = Policy(weight_age=1000.0, max_age_s=DAY, weight_fairshare=0.0)
    waiting = job(1, submitted_at=NOW - HOUR)
    once = PriorityModel(snap(topo(8), [waiting]), NOW, policy).effective(waiting)
    for _ in range(50):  # many cycles at the same instant change nothing
        again = PriorityModel(snap(topo(8), [waiting]), NOW, policy).effective(waiting)
        assert again == once


def test_fairshare_favours_the_tenant_that_used_less() -> None:
    policy = Policy(weight_age=0.0, weight_fairshare=1000.0)
    heavy = job(1, user="h", tenant="heavy", submitted_at=NOW - 100)
    light = job(2, user="l", tenant="light", submitted_at=NOW)
    state = snap(topo(8), [heavy, light], usage={"heavy": 9000.0, "light": 1000.0})
    model = PriorityModel(state, NOW, policy)
    assert ids(order_pending([heavy, light], model)) == [2, 1]
    # Fair-share is 2^(-U/S): light used 10% with a 50% share -> 2^-0.2.
    assert model.effective(light) - light.priority == pytest.approx(1000 * 2 ** (-0.2))


def test_fairshare_counts_running_jobs_gpu_seconds_so_far() -> None:
    policy = Policy(weight_age=0.0, weight_fairshare=1000.0)
    hog = running(50, [f"n0-g{i}" for i in range(4)], user="h", tenant="a", started_at=NOW - HOUR)
    state = snap(topo(8), [job(1, tenant="a"), job(2, tenant="b")], [hog])
    assert tenant_usage(state, NOW) == {"a": 4 * HOUR}
    model = PriorityModel(state, NOW, policy)
    assert ids(order_pending(state.pending, model)) == [2, 1]


def test_fairshare_weight_gives_a_bigger_share() -> None:
    policy = Policy(weight_age=0.0, weight_fairshare=1000.0)
    tenants = [Tenant("big", fair_share_weight=3.0), Tenant("small", fair_share_weight=1.0)]
    # Equal usage: "big" is entitled to 75%, so using 50% is light for it.
    state = snap(
        topo(8),
        [job(1, tenant="small", submitted_at=NOW - 5), job(2, tenant="big")],
        tenants=tenants,
        usage={"big": 100.0, "small": 100.0},
    )
    model = PriorityModel(state, NOW, policy)
    assert ids(order_pending(state.pending, model)) == [2, 1]


def test_tier_and_size_factors() -> None:
    policy = Policy(weight_age=0.0, weight_fairshare=0.0, weight_size=800.0)
    tenants = [Tenant("vip", priority_tier=1000)]
    state = snap(topo(8), tenants=tenants)
    model = PriorityModel(state, NOW, policy)
    assert model.effective(job(1, tenant="vip", gpu_count=2)) == pytest.approx(100 + 1000 + 200)
    assert model.effective(job(2, gpu_count=8)) == pytest.approx(100 + 800)


def test_unknown_tenant_behaves_like_a_default_one() -> None:
    policy = Policy(weight_age=0.0, weight_fairshare=1000.0)
    state = snap(topo(8), [job(1, tenant="nobody-configured")])
    model = PriorityModel(state, NOW, policy)
    assert model.effective(state.pending[0]) == pytest.approx(100 + 1000.0)


def test_queue_order_matches_effective_priority() -> None:
    policy = Policy(weight_age=700.0, max_age_s=HOUR, weight_fairshare=300.0, weight_size=50.0)
    pending = [
        job(i, tenant=f"t{i % 3}", priority=(i * 37) % 500, gpu_count=1 + i % 4)
        for i in range(1, 60)
    ]
    state = snap(topo(8, 8), pending, usage={"t0": 50.0, "t1": 500.0})
    model = PriorityModel(state, NOW, policy)
    expected = sorted(pending, key=lambda j: (-model.effective(j), j.submitted_at, j.id))
    assert ids(order_pending(pending, model)) == ids(expected)


def test_the_length_factor_puts_short_limits_first_but_age_still_bounds_waits() -> None:
    """``weight_length`` (ADR 0017): among jobs that waited alike, the shorter time limit goes
    first; with ``weight_length <= weight_age`` a job that waited ``max_age_s`` is never
    passed by a newer one, however short."""
    policy = Policy(weight_age=1000.0, max_age_s=DAY, weight_fairshare=0.0, weight_length=1000.0)
    assert length_factor(None, 7 * DAY) == 0.0
    assert length_factor(30, 7 * DAY) == 1.0 and length_factor(8 * DAY, 7 * DAY) == 0.0
    assert length_factor(600, 7 * DAY) > length_factor(3600, 7 * DAY) > 0.0
    long_old = job(1, submitted_at=NOW - DAY, time_limit_s=6 * DAY)
    long_new = job(2, submitted_at=NOW - 60, time_limit_s=6 * DAY)
    short_new = job(3, submitted_at=NOW - 60, time_limit_s=60)
    open_new = job(4, submitted_at=NOW - 60, time_limit_s=None)
    snapshot = snap(topo(8), [open_new, long_new, short_new, long_old])
    model = PriorityModel(snapshot, NOW, policy)
    assert [j.id for j in order_pending(snapshot.pending, model)] == [1, 3, 2, 4]
    # Off by default: the server's queue order is unchanged.
    default = PriorityModel(snapshot, NOW, Policy(weight_fairshare=0.0))
    assert [j.id for j in order_pending(snapshot.pending, default)] == [1, 2, 3, 4]
