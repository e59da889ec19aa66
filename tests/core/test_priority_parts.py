"""``sprio``'s view: each pending job's effective priority split into its weighted parts."""

from __future__ import annotations

import math

import pytest
from planner_kit import NOW, job, running, snap, topo

from procplan.core.jobs import Policy, Tenant
from procplan.core.priority import PriorityModel, order_pending
from procplan.core.priority_parts import priority_parts
from procplan.core.timeutil import DAY

POLICY = Policy(
    weight_age=1000.0, max_age_s=DAY, weight_fairshare=1000.0, weight_size=800.0,
    weight_length=1000.0, length_ref_s=7 * DAY,
)  # fmt: skip


def test_parts_sum_to_the_planners_number_in_the_planners_order() -> None:
    tenants = [Tenant("heavy"), Tenant("light", priority_tier=50)]
    pending = [
        job(1, user="u1", tenant="heavy", priority=100, submitted_at=NOW - DAY // 2),
        job(2, user="u2", tenant="light", priority=100, submitted_at=NOW - 60, gpu_count=4),
        job(3, user="u1", tenant="heavy", priority=500, submitted_at=NOW, time_limit_s=None),
    ]
    busy = [running(9, ("n0-g0", "n0-g1"), user="u1", tenant="heavy",
                    started_at=NOW - 3600)]  # fmt: skip
    snapshot = snap(topo(8), pending, busy, tenants=tenants, usage={"heavy": 5000.0})
    parts = priority_parts(snapshot, NOW, POLICY)
    model = PriorityModel(snapshot, NOW, POLICY)
    assert [p.job_id for p in parts] == [j.id for j in order_pending(pending, model)]
    by_id = {p.job_id: p for p in parts}
    for item in parts:
        total = item.class_ + item.age + item.fairshare + item.size + item.length
        assert total == pytest.approx(item.effective)
        assert item.effective == model.effective(next(j for j in pending if j.id == item.job_id))
    assert (by_id[2].class_, by_id[2].user, by_id[2].tenant) == (150, "u2", "light")
    assert by_id[1].age == pytest.approx(500.0)
    assert by_id[3].age == 0.0
    assert by_id[2].size == pytest.approx(400.0)  # 4 of 8 GPUs at weight 800
    assert by_id[2].fairshare == pytest.approx(1000.0)  # light used nothing
    assert by_id[1].fairshare < by_id[2].fairshare  # heavy used and uses GPUs
    # 1 hour on the log scale from 1 minute (1) to 7 days (0); open-ended jobs get 0.
    assert by_id[1].length == pytest.approx(1000.0 * (1 - math.log(60) / math.log(7 * 24 * 60)))
    assert by_id[3].length == 0.0


def test_no_pending_jobs_no_rows() -> None:
    assert priority_parts(snap(topo(2)), NOW, POLICY) == []
