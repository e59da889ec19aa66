"""Metric definitions on hand-made records."""

from __future__ import annotations

import pytest

from procplan.sim.engine import JobRecord
from procplan.sim.metrics import jain, percentile, summarize


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([5.0], 99) == 5.0
    assert percentile([3, 1, 2], 50) == 2


def test_jain_index() -> None:
    assert jain([2.0, 2.0, 2.0]) == 1.0
    assert jain([1.0, 0.0]) == 0.5
    assert jain([]) == 1.0


def test_summary_by_hand() -> None:
    records = [
        JobRecord(1, submit_s=0, start_s=0, end_s=10, gpus=2, group="a"),  # JCT 10, slowdown 1
        JobRecord(2, submit_s=0, start_s=10, end_s=20, gpus=2, group="b"),  # JCT 20, slowdown 2
    ]
    m = summarize(records, cluster_gpus=4)
    assert m["jobs"] == 2
    assert (m["jct_avg"], m["jct_median"], m["jct_p99"]) == (15, 15, 20)
    assert (m["queue_avg"], m["queue_max"], m["wide_queue_max"]) == (5, 10, 0)
    assert m["makespan"] == 20
    assert m["utilization"] == pytest.approx(40 / 80)
    assert m["fairness"] == pytest.approx(9 / 10)  # (1 + 2)² / (2 · (1 + 4))


def test_the_longest_wait_of_a_wide_job() -> None:
    records = [
        JobRecord(1, submit_s=0, start_s=50, end_s=60, gpus=1, group="a"),
        JobRecord(2, submit_s=0, start_s=30, end_s=40, gpus=8, group="a"),
        JobRecord(3, submit_s=5, start_s=10, end_s=40, gpus=16, group="b"),
    ]
    m = summarize(records, cluster_gpus=16)
    assert (m["queue_max"], m["wide_queue_max"]) == (50, 30)


def test_summary_of_nothing() -> None:
    m = summarize([], cluster_gpus=8)
    assert m["jobs"] == 0 and m["fairness"] == 1.0 and m["utilization"] == 0.0
