"""The ledger rules as stated in DESIGN.md, asked of ``core.ledger.judge`` one by one (the
differential test in ``tests/store`` then holds every other reader to the same answers)."""

from __future__ import annotations

from procplan.core.jobs import OPEN_END
from procplan.core.ledger import Ask, Hold, Holder, Preempted, Refusal, judge, preempted_jobs

H = 3600
T = 1_795_428_000


def booking(holder_id: int, user: str, start: int, end: int, gpu: str = "g0") -> Hold:
    return Hold(Holder.BOOKING, holder_id, user, gpu, start, end)


def job(holder_id: int, user: str, end: int = OPEN_END, gpu: str = "g0", start: int = T) -> Hold:
    return Hold(Holder.JOB, holder_id, user, gpu, start, end, f"job{holder_id}", "batch")


def test_rule_1_bookings_never_overlap_whoever_owns_them() -> None:
    held = [booking(1, "ada", T, T + 2 * H)]
    for user in ("ada", "bob"):
        verdict = judge(Ask.booking(user, T + H, T + 3 * H), held)
        assert verdict.refusal is Refusal.BOOKED and verdict.blocking == tuple(held)
    assert judge(Ask.booking("bob", T + 2 * H, T + 3 * H), held).ok  # half-open: touching is fine


def test_an_extension_is_not_in_its_own_way() -> None:
    held = [booking(1, "ada", T, T + 2 * H)]
    assert judge(Ask.booking("ada", T, T + 3 * H, own_id=1), held).ok
    assert not judge(Ask.booking("ada", T, T + 3 * H, own_id=2), held).ok


def test_rule_2_a_booking_keeps_its_gpus_for_its_owner_and_jobs_naming_it() -> None:
    held = [booking(7, "ada", T, T + 2 * H)]
    assert judge(Ask.job("ada", T, H), held).ok
    assert judge(Ask.job("bob", T, H, booking_id=7), held).ok
    verdict = judge(Ask.job("bob", T, H), held)
    assert verdict.refusal is Refusal.FOREIGN_BOOKING and verdict.blocking == tuple(held)


def test_rule_3_a_limited_job_needs_its_whole_window_an_open_one_only_its_start() -> None:
    later = [booking(7, "ada", T + 2 * H, T + 3 * H)]
    assert judge(Ask.job("bob", T, 2 * H), later).ok  # ends as the booking begins
    assert judge(Ask.job("bob", T, 2 * H + 1), later).refusal is Refusal.FOREIGN_BOOKING
    assert judge(Ask.job("bob", T, None), later).ok  # will be preempted at T + 2h
    now = [booking(7, "ada", T - H, T + H)]
    assert judge(Ask.job("bob", T, None), now).refusal is Refusal.FOREIGN_BOOKING


def test_two_jobs_never_share_a_gpu() -> None:
    for user in ("ada", "bob"):
        verdict = judge(Ask.job(user, T, H), [job(3, "ada", T + 2 * H)])
        assert verdict.refusal is Refusal.JOB_RUNNING
    assert judge(Ask.job("bob", T + 2 * H, H), [job(3, "ada", T + 2 * H)]).ok


def test_rule_4_a_booking_over_a_job() -> None:
    limited, open_ended = job(3, "ada", T + 2 * H), job(4, "ada")
    # Another user's time-limited job is in the way while its claim lasts...
    verdict = judge(Ask.booking("bob", T + H, T + 3 * H), [limited])
    assert verdict.refusal is Refusal.JOB_HOLDS and verdict.blocking == (limited,)
    assert judge(Ask.booking("bob", T + 2 * H, T + 3 * H), [limited]).ok
    # ...its owner's own job never is...
    assert judge(Ask.booking("ada", T + H, T + 3 * H), [limited, open_ended]).ok
    assert judge(Ask.booking("ada", T + H, T + 3 * H), [open_ended]).preempts == ()
    # ...and an open-ended job lets the booking in, to be preempted when it begins.
    verdict = judge(Ask.booking("bob", T + H, T + 3 * H), [open_ended])
    assert verdict.ok and verdict.preempts == (open_ended,)


def test_a_booking_in_the_way_is_reported_before_a_job() -> None:
    held = [job(3, "ada", T + 2 * H), booking(1, "cy", T + H, T + 2 * H)]
    assert judge(Ask.booking("bob", T, T + 3 * H), held).refusal is Refusal.BOOKED


def test_holds_that_do_not_overlap_are_ignored() -> None:
    held = [booking(1, "ada", T - 2 * H, T), job(3, "ada", T, start=T - H)]
    assert judge(Ask.booking("bob", T, T + H), held).ok
    assert judge(Ask.job("bob", T, H), held).ok


def test_the_preemption_report_lists_each_job_once_with_its_gpus() -> None:
    ask = Ask.booking("bob", T, T + H)
    verdicts = [judge(ask, [job(9, "ada", gpu=g), job(4, "cy", gpu=g)]) for g in ("g1", "g0")]
    assert preempted_jobs(verdicts) == [
        Preempted(4, "cy", "batch", "job4", ("g0", "g1")),
        Preempted(9, "ada", "batch", "job9", ("g0", "g1")),
    ]
