"""``service.usage`` on a real SQLite store (demo topology, FakeClock): which history rows a
report reads (hourly before the roll-up frontier, minutes after), cancelled bookings, and
per-job efficiency falling back to hourly rows once minutes are pruned."""

from __future__ import annotations

import pytest

from procplan.core.errors import InvalidRequest
from procplan.core.model import BookingRequest
from procplan.core.timeutil import parse_instant
from procplan.core.usage import By
from procplan.server import Composed
from procplan.service.usage import UsageService
from procplan.store.history_repo import HistoryRow, HistoryStore
from procplan.testing import FakeClock

T10 = parse_instant("2026-11-23T10:00:00Z")
H, M = 3600, 60


def minutes(gpu: str, start: int, count: int, util: float) -> list[HistoryRow]:
    return [
        HistoryRow(gpu, M, start + M * i, 2, (2 * util, 2000.0, 0.0, 0.0), (2, 2, 0, 0),
                   (util, 1000.0, None, None))
        for i in range(count)
    ]  # fmt: skip


def book(composed: Composed, user: str, gpu: str, start: int, end: int) -> int:
    req = BookingRequest("node-a", start, end, user, "x", gpu_ids=(gpu,))
    return composed.bookings.create(req, whole_hours=False).id


def test_report_reads_hours_before_the_frontier_and_minutes_after(
    composed: Composed, clock: FakeClock
) -> None:
    book(composed, "alice", "node-a-gpu0", T10, T10 + 6 * H)
    bob = book(composed, "bob", "node-a-gpu1", T10 + H, T10 + 5 * H)
    history = HistoryStore(composed.store)
    history.add(minutes("node-a-gpu0", T10, 30, 80.0) + minutes("node-a-gpu0", T10 + 1800, 30, 0))
    history.add(minutes("node-a-gpu0", T10 + H, 5, 1.0))  # hour 11: mean 1 % — not busy
    assert history.rollup(M, H, T10, T10 + 2 * H) == 2  # frontier: 12:00
    history.add(minutes("node-a-gpu0", T10 + 2 * H, 10, 90.0))  # after it: minute precision
    clock.set(T10 + 2 * H)
    composed.bookings.cancel(bob)  # bob held his GPU 11:00–12:00
    clock.set(T10 + 3 * H)
    service = UsageService(composed.store, clock)
    report = service.report("user", T10, T10 + 3 * H)
    alice, bob_row = report.rows["alice"], report.rows["bob"]
    # 10:00–11:00 is one busy hourly bucket (mean 40 %): the whole hour counts, coarsely.
    assert (alice.booked_s, alice.used_s) == (3 * H, H + 10 * M)
    assert (bob_row.booked_s, bob_row.used_s) == (H, 0)
    assert report.until == T10 + 3 * H and report.total.booked_s == 4 * H
    assert service.report(By.NODE, T10, T10 + 3 * H).rows["node-a"].idle_s == 3 * H - 10 * M


def test_a_busy_gpu_without_booking_or_job_is_unbooked(
    composed: Composed, clock: FakeClock
) -> None:
    HistoryStore(composed.store).add(minutes("node-b-gpu3", T10, 20, 50.0))
    clock.set(T10 + H)
    service = UsageService(composed.store, clock, busy_pct=60.0)
    assert service.report("node", T10, T10 + H).rows == {}  # 50 % < 60 %: not busy
    service.busy_pct = 5.0
    assert service.report("node", T10, T10 + H).rows["node-b"].unbooked_s == 20 * M


def test_job_efficiency_uses_hours_where_minutes_are_gone(
    composed: Composed, clock: FakeClock
) -> None:
    history = HistoryStore(composed.store)
    history.add(minutes("node-a-gpu0", T10, 60, 40.0) + minutes("node-a-gpu0", T10 + H, 60, 60.0))
    history.rollup(M, H, T10, T10 + 2 * H)
    history.prune(M, T10 + H)  # the first hour's minutes are gone
    samples = UsageService(composed.store, clock).repo.samples(["node-a-gpu0"], T10, T10 + 2 * H)
    assert sorted((s.start, s.step) for s in samples)[:2] == [(T10, H), (T10 + H, M)]
    assert len(samples) == 61


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [(T10, T10, "bad_window"), (T10 - 500 * 86400, T10, "window_too_long")],
)
def test_bad_windows(composed: Composed, clock: FakeClock, start: int, end: int, code: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        UsageService(composed.store, clock).report("user", start, end)
    assert caught.value.code == code
