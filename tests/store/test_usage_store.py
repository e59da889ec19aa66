"""``store.usage_repo``: the busy-bucket bit masks read back as the spans a per-bucket scan
finds (hours before the roll-up frontier, minutes after), on a real SQLite store."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from procplan.core.usage import busy_bucket, merge
from procplan.server import Composed
from procplan.store.history_repo import HistoryRow, HistoryStore
from procplan.store.tables import gpu_history
from procplan.store.usage_repo import UsageStore, _mask_spans

T0 = 1_795_392_000  # 2026-11-23T00:00:00Z, a day boundary
GPUS = ("node-a-gpu0", "node-a-gpu1")


def test_mask_spans_joins_runs_across_periods() -> None:
    out: list[tuple[int, int]] = []
    _mask_spans(out, 0b1101, 0, 10)
    assert out == [(0, 10), (20, 40)]
    _mask_spans(out, 0b1, 40, 10)  # continues the last run
    assert out == [(0, 10), (20, 50)]


def row(gpu: str, step: int, bucket: int, util: float, n: int) -> HistoryRow:
    return HistoryRow(gpu, step, bucket, n, (util * n, 0.0, 0.0, 0.0), (n, 0, 0, 0),
                      (util, None, None, None))  # fmt: skip


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    hours=st.lists(
        st.tuples(st.sampled_from(GPUS), st.integers(0, 59), st.sampled_from([0, 3, 50])),
        max_size=30,
    ),
    minutes=st.lists(
        st.tuples(st.sampled_from(GPUS), st.integers(0, 240), st.sampled_from([0, 9])),
        max_size=30,
    ),
    window=st.tuples(st.integers(0, 62 * 3600), st.integers(1, 62 * 3600)),
)  # fmt: skip
def test_busy_spans_match_a_bucket_by_bucket_scan(
    composed: Composed, hours, minutes, window
) -> None:  # type: ignore[no-untyped-def]
    with composed.store.write() as conn:
        conn.execute(delete(gpu_history))
    history = HistoryStore(composed.store)
    hourly = {(g, T0 + h * 3600): util for g, h, util in hours}
    frontier = T0 + 61 * 3600
    minute_rows = {(g, frontier + m * 60): util for g, m, util in minutes}
    history.add([row(g, 3600, b, u, 4) for (g, b), u in hourly.items()])
    history.add([row(g, 60, b, u, 2) for (g, b), u in minute_rows.items()])
    history.add([row(GPUS[0], 3600, frontier - 3600, 0.0, 1)])  # sets the frontier
    start = T0 + min(window)
    end = start + max(window[1], 1)
    got = UsageStore(composed.store).busy(start, end, 5.0)
    want: dict[str, list[tuple[int, int]]] = {}
    for step, rows in ((3600, hourly), (60, minute_rows)):
        for (gpu, bucket), util in rows.items():
            split = min(max(frontier, start), end)
            lo, hi = (start, split) if step == 3600 else (split, end)
            if lo - lo % step <= bucket < hi and busy_bucket(util * 4, 4, 5.0):
                want.setdefault(gpu, []).append((bucket, bucket + step))
    assert {g: merge(s) for g, s in got.items()} == {g: merge(s) for g, s in want.items()}
