"""Usage accounting (``core.usage``): the rules on hand-made cases, and a property test that
the interval arithmetic agrees with a naive per-minute recomputation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from procplan.core.usage import (
    UNATTRIBUTED,
    By,
    Hold,
    JobStart,
    Sample,
    Totals,
    account,
    busy_bucket,
    efficiency,
    merge,
)

H = 3600


def booking(gpu: str, start: int, end: int, user: str = "ann", bid: int = 1) -> Hold:
    return Hold(gpu, "n1", start, end, user, "lab", booking=bid)


def job(gpu: str, start: int, end: int, user: str = "ann", jid: int = 7) -> Hold:
    return Hold(gpu, "n1", start, end, user, "lab", job=jid)


def test_merge_joins_touching_and_overlapping_spans() -> None:
    assert merge([(5, 9), (0, 2), (2, 4), (8, 12), (20, 20)]) == [(0, 4), (5, 12)]


def test_busy_bucket_is_mean_utilization_at_threshold() -> None:
    assert busy_bucket(50.0, 10, 5.0)  # mean 5 %
    assert not busy_bucket(49.0, 10, 5.0)
    assert not busy_bucket(0.0, 0, 0.0)  # no reading is not busy


def test_booking_used_by_owner_job_or_busy_bucket() -> None:
    holds = [booking("g0", 0, 4 * H), job("g0", 0, H)]
    usage = account(0, 10 * H, holds, {"g0": [(2 * H, 3 * H)]})
    assert usage.bookings[1] == (4 * H, 2 * H)
    row = usage.grouped(By.USER)["ann"]
    assert (row.booked_s, row.used_s, row.idle_s, row.job_s) == (4 * H, 2 * H, 2 * H, H)
    assert row.idle_fraction == 0.5


def test_someone_elses_job_does_not_count_as_the_bookings_use() -> None:
    holds = [booking("g0", 0, 2 * H), job("g0", 0, H, user="bob")]
    usage = account(0, 2 * H, holds, {})
    assert usage.bookings[1] == (2 * H, 0)


def test_busy_time_without_booking_or_job_is_unbooked_and_unattributed() -> None:
    holds = [booking("g0", 0, H), job("g0", 2 * H, 3 * H, user="bob")]
    busy = {"g0": [(0, 4 * H)], "g1": [(0, H)]}
    usage = account(0, 4 * H, holds, busy, gpu_nodes={"g1": "n2"})
    assert usage.unbooked == {"g0": 2 * H, "g1": H}
    by_node = usage.grouped(By.NODE)
    assert by_node["n1"].unbooked_s == 2 * H and by_node["n2"].unbooked_s == H
    assert usage.grouped(By.USER)[UNATTRIBUTED].unbooked_s == 3 * H


def test_window_clips_everything() -> None:
    holds = [booking("g0", 0, 10 * H), job("g0", 0, 10 * H)]
    usage = account(2 * H, 3 * H, holds, {"g0": [(0, 10 * H)]})
    row = usage.grouped(By.TENANT)["lab"]
    assert (row.booked_s, row.used_s, row.job_s, row.unbooked_s) == (H, H, H, 0)


def test_job_starts_count_jobs_and_wait_per_node() -> None:
    starts = [
        JobStart(1, "ann", "lab", ("n1", "n2"), submitted=0, started=100),
        JobStart(2, "bob", "lab", ("n1",), submitted=50, started=10 * H),  # outside
    ]
    usage = account(0, H, [], {}, starts)
    assert usage.grouped(By.USER)["ann"].jobs == 1
    by_node = usage.grouped(By.NODE)
    assert by_node["n2"].wait_s == 100 and by_node["n1"].mean_wait_s == 100
    assert usage.total().jobs == 1


def test_efficiency_from_overlapping_buckets() -> None:
    claims = [job("g0", 60, 180), job("g1", 60, 180)]
    samples = [
        Sample("g0", 60, 60, 100.0, 2, 80.0, 2000.0, 2, 1500.0),
        Sample("g0", 120, 60, 20.0, 2, 15.0, 1000.0, 2, 600.0),
        Sample("g1", 0, 60, 400.0, 4, 100.0, 0.0, 0, None),  # before the claim: ignored
        Sample("g2", 60, 60, 400.0, 4, 100.0, 0.0, 0, None),  # not the job's GPU
    ]
    eff = efficiency(claims, samples)
    assert (eff.gpu_s, eff.wall_s, eff.samples) == (240, 120, 2)
    assert eff.util_mean == 30.0 and eff.util_peak == 80.0
    assert eff.mem_mean_mb == 750.0 and eff.mem_peak_mb == 1500.0
    empty = efficiency(claims, [])
    assert empty.util_mean is None and empty.mem_peak_mb is None


# ---- property: interval arithmetic == per-minute recount -------------------------------

GPUS = {"g0": "n1", "g1": "n1", "g2": "n2"}
USERS = {"ann": "lab", "bob": "lab", "cy": "ops"}
MINUTES = 240


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, int, list[Hold], dict[str, list[tuple[int, int]]]]:
    lo = draw(st.integers(0, MINUTES - 1))
    hi = draw(st.integers(lo + 1, MINUTES))

    def span() -> tuple[int, int]:
        a = draw(st.integers(0, MINUTES))
        return a, draw(st.integers(a, min(a + 120, MINUTES)))

    holds = []
    for n in range(draw(st.integers(0, 8))):
        gpu = draw(st.sampled_from(sorted(GPUS)))
        user = draw(st.sampled_from(sorted(USERS)))
        a, b = span()
        is_job = draw(st.booleans())
        holds.append(
            Hold(
                gpu,
                GPUS[gpu],
                a * 60,
                b * 60,
                user,
                USERS[user],
                booking=None if is_job else n + 1,
                job=n + 1 if is_job else None,
            )
        )
    busy: dict[str, list[tuple[int, int]]] = {}
    for _ in range(draw(st.integers(0, 12))):
        gpu = draw(st.sampled_from(sorted(GPUS)))
        step = draw(st.sampled_from([60, 60, 3600]))
        bucket = draw(st.integers(0, MINUTES)) * 60 // step * step
        busy.setdefault(gpu, []).append((bucket, bucket + step))
    return lo * 60, hi * 60, holds, busy


def naive(
    lo: int, hi: int, holds: list[Hold], busy: dict[str, list[tuple[int, int]]], by: By
) -> dict[str, Totals]:
    """Minute by minute, GPU by GPU: the rules of ``core.usage`` read literally."""
    rows: dict[str, Totals] = {}

    def key(hold: Hold) -> str:
        return {By.USER: hold.user, By.TENANT: hold.tenant, By.NODE: hold.node}[by]

    for minute in range(lo, hi, 60):
        for gpu, node in GPUS.items():
            here = [h for h in holds if h.gpu == gpu and h.start <= minute < h.end]
            is_busy = any(a <= minute < b for a, b in busy.get(gpu, ()))
            for hold in here:
                row = rows.setdefault(key(hold), Totals())
                if hold.job is not None:
                    row.job_s += 60
                    continue
                row.booked_s += 60
                own_job = any(h.job is not None and h.user == hold.user for h in here)
                if own_job or is_busy:
                    row.used_s += 60
            if is_busy and not here:
                name = node if by is By.NODE else UNATTRIBUTED
                rows.setdefault(name, Totals()).unbooked_s += 60
    return dict(sorted(rows.items()))


@settings(max_examples=40, deadline=None)
@given(scenarios(), st.sampled_from(list(By)))
def test_report_agrees_with_a_per_minute_recount(scenario, by: By) -> None:  # type: ignore[no-untyped-def]
    lo, hi, holds, busy = scenario
    got = account(lo, hi, holds, busy, gpu_nodes=GPUS).grouped(by)
    want = naive(lo, hi, holds, busy, by)
    assert {k: v for k, v in got.items()} == want
