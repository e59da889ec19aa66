"""HistoryStore: minute aggregates merged by upsert (counts and sums add, the max is kept,
missing metrics stay missing), idempotent roll-ups, pruning and range reads. SQLite always,
PostgreSQL when ``PROCPLAN_TEST_PG_URL`` is set."""

from __future__ import annotations

import pytest

from procplan.core.model import Gpu, Node, Topology
from procplan.store.engine import Store
from procplan.store.history_repo import METRICS, HistoryRow, HistoryStore
from procplan.store.topology_repo import sync_topology

NOW = 1_795_428_000  # a whole hour
MIN, HOUR = 60, 3600


@pytest.fixture
def db(db: Store) -> Store:
    """The shared migrated store, with a topology."""
    with db.write() as conn:
        box = Node("box", "box", (Gpu("b1"), Gpu("b0")))  # position order: b1 first
        sync_topology(conn, Topology((box, Node("other", "other", (Gpu("o0"),)))), NOW)
    return db


@pytest.fixture
def hs(db: Store) -> HistoryStore:
    return HistoryStore(db)


def row(
    gpu: str,
    bucket: int,
    util: float | None = 50.0,
    temp: float | None = 60.0,
    n: int = 1,
    step: int = MIN,
) -> HistoryRow:
    """``n`` identical readings of utilization and temperature (memory and power missing)."""
    return HistoryRow(
        gpu,
        step,
        bucket,
        n,
        (n * (util or 0.0), 0.0, n * (temp or 0.0), 0.0),
        (n if util is not None else 0, 0, n if temp is not None else 0, 0),
        (util, None, temp, None),
    )


def test_metrics_order() -> None:
    assert METRICS == ("util", "mem_used", "temp", "power")


def test_add_merges_partial_minutes(hs: HistoryStore) -> None:
    hs.add([row("b0", NOW, util=40.0, temp=None, n=2)])
    hs.add([row("b0", NOW, util=90.0, temp=55.0), row("b0", NOW, util=None, temp=70.0)])
    [merged] = hs.query("box", MIN, NOW, NOW + MIN)
    assert merged == HistoryRow(
        "b0", MIN, NOW, 4, (170.0, 0.0, 125.0, 0.0), (3, 0, 2, 0), (90.0, None, 70.0, None)
    )
    # A smaller max and a missing one never lower or erase the stored max.
    hs.add([row("b0", NOW, util=10.0, temp=None)])
    [again] = hs.query("box", MIN, NOW, NOW + MIN)
    assert again.maxes == (90.0, None, 70.0, None) and again.n == 5


def test_add_skips_unknown_and_retired_gpus(db: Store, hs: HistoryStore) -> None:
    with db.write() as conn:
        sync_topology(conn, Topology((Node("box", "box", (Gpu("b0"),)),)), NOW)
    hs.add([row("b1", NOW), row("ghost", NOW), row("b0", NOW)])
    assert [r.gpu_id for r in hs.query("box", MIN, NOW, NOW + HOUR)] == ["b0"]
    hs.add([])


def test_query_orders_by_gpu_position_then_bucket_within_range(hs: HistoryStore) -> None:
    hs.add([row(g, NOW + i * MIN) for i in (2, 0, 1, 60) for g in ("b0", "b1", "o0")])
    hs.add([row("b0", NOW, step=HOUR)])
    got = [(r.gpu_id, r.bucket - NOW) for r in hs.query("box", MIN, NOW, NOW + HOUR)]
    assert got == [("b1", 0), ("b1", 60), ("b1", 120), ("b0", 0), ("b0", 60), ("b0", 120)]
    assert [r.bucket for r in hs.query("box", MIN, NOW + MIN, NOW + 2 * MIN)] == [NOW + MIN] * 2
    assert [r.step_s for r in hs.query("box", HOUR, NOW, NOW + HOUR)] == [HOUR]
    assert hs.query("nobody", MIN, NOW, NOW + HOUR) == []


def test_rollup_replaces_and_is_idempotent(hs: HistoryStore) -> None:
    minutes = [row("b0", NOW + i * MIN, util=float(i), temp=None) for i in range(60)]
    minutes += [row("b0", NOW + HOUR, util=99.0), row("o0", NOW + 5 * MIN, n=3)]
    hs.add(minutes)
    assert hs.rollup(MIN, HOUR, NOW, NOW + HOUR) == 2
    first = hs.query("box", HOUR, NOW, NOW + 2 * HOUR)
    assert first == [
        HistoryRow(
            "b0", HOUR, NOW, 60, (1770.0, 0.0, 0.0, 0.0), (60, 0, 0, 0), (59.0, None, None, None)
        )
    ]
    # Again, and with a window not on hour boundaries (floored): the same rows, not doubled.
    assert hs.rollup(MIN, HOUR, NOW + 10, NOW + HOUR + 59) == 2
    assert hs.query("box", HOUR, NOW, NOW + 2 * HOUR) == first
    [other] = hs.query("other", HOUR, NOW, NOW + HOUR)
    assert (other.n, other.sums, other.maxes) == (
        3,
        (150.0, 0.0, 180.0, 0.0),
        (50.0, None, 60.0, None),
    )
    # A late minute row folds in on the next roll-up.
    hs.add([row("b0", NOW + 59 * MIN, util=100.0, temp=None)])
    hs.rollup(MIN, HOUR, NOW, NOW + HOUR)
    [late] = hs.query("box", HOUR, NOW, NOW + HOUR)
    assert (late.n, late.maxes[0]) == (61, 100.0)
    assert hs.rollup(MIN, HOUR, NOW, NOW) == 0


def test_rollup_keeps_hours_whose_minutes_were_pruned(hs: HistoryStore) -> None:
    hs.add([row("b0", NOW + MIN), row("b0", NOW + HOUR + MIN)])
    assert hs.rollup(MIN, HOUR, NOW, NOW + 2 * HOUR) == 2
    assert hs.prune(MIN, NOW + HOUR) == 1
    assert hs.rollup(MIN, HOUR, NOW, NOW + 2 * HOUR) == 1
    assert [r.bucket for r in hs.query("box", HOUR, NOW, NOW + 2 * HOUR)] == [NOW, NOW + HOUR]


def test_prune_by_step_and_bucket(hs: HistoryStore) -> None:
    hs.add([row("b0", NOW + i * MIN) for i in range(5)] + [row("b0", NOW, step=HOUR)])
    assert hs.prune(MIN, NOW + 2 * MIN) == 2
    assert [r.bucket - NOW for r in hs.query("box", MIN, NOW, NOW + HOUR)] == [120, 180, 240]
    assert len(hs.query("box", HOUR, NOW, NOW + HOUR)) == 1
    assert hs.prune(MIN, NOW) == 0
