"""``next_free`` (issue #17 item 2): the window a refused booking is offered really is free by
the rules (``judge``), and no earlier start on the grid of the same length is."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from procplan.core.jobs import OPEN_END
from procplan.core.ledger import Ask, BookingConflict, Hold, Holder, Slot, judge, next_free
from procplan.core.timeutil import HOUR, MINUTE

GPUS = ("g0", "g1", "g2")
T0 = 1_795_428_000  # a whole hour


def booking(i: int, gpu: str, start: int, end: int, user: str = "bob") -> Hold:
    return Hold(Holder.BOOKING, i, user, gpu, T0 + start, T0 + end, label="BB")


def test_the_first_gap_long_enough_is_offered() -> None:
    holds = {
        "g0": [booking(1, "g0", 0, 2 * HOUR), booking(2, "g0", 3 * HOUR, 5 * HOUR)],
    }
    ask = Ask.booking("alice", T0 + HOUR, T0 + 3 * HOUR)  # 2 h: the 1 h gap is too short
    slot = next_free(ask, holds, ["g0"])
    assert slot == Slot(T0 + 5 * HOUR, T0 + 7 * HOUR, ("g0",))


def test_count_takes_any_free_gpus_and_own_jobs_do_not_block() -> None:
    holds = {
        "g0": [booking(1, "g0", 0, 4 * HOUR)],
        "g1": [Hold(Holder.JOB, 7, "alice", "g1", T0, T0 + 9 * HOUR)],  # the asker's own job
        "g2": [Hold(Holder.JOB, 8, "carol", "g2", T0, T0 + HOUR)],  # a time-limited job
    }
    ask = Ask.booking("alice", T0, T0 + HOUR)
    # g0 is booked by bob, g2 held by carol's job for the first hour; g1's job is alice's.
    assert next_free(ask, holds, GPUS, 1) == Slot(T0, T0 + HOUR, ("g1",))
    assert next_free(ask, holds, GPUS, 2) == Slot(T0 + HOUR, T0 + 2 * HOUR, ("g1", "g2"))
    assert next_free(ask, holds, ["g0", "g2"]) == Slot(T0 + 4 * HOUR, T0 + 5 * HOUR, ("g0", "g2"))


def test_open_ended_jobs_do_not_block_but_the_horizon_bounds_the_search() -> None:
    job = Hold(Holder.JOB, 3, "carol", "g0", T0, OPEN_END)
    ask = Ask.booking("alice", T0, T0 + HOUR)
    assert next_free(ask, {"g0": [job]}, ["g0"]) == Slot(T0, T0 + HOUR, ("g0",))
    wall = booking(1, "g0", 0, 40 * 24 * HOUR)
    assert next_free(ask, {"g0": [wall]}, ["g0"]) is None


def test_conflict_hint_names_holders_and_the_window() -> None:
    hold = booking(1, "g0", 0, 2 * HOUR)
    refused = BookingConflict(
        "busy", "gpu_conflict", [hold], Slot(T0 + 2 * HOUR, T0 + 3 * HOUR, ("g0",))
    )
    hint = refused.hint()
    assert refused.message == "busy" and refused.status == 409
    assert "booking 1 of bob (BB)" in hint
    assert "next free: g0 2026-11-23T12:00:00+00:00 to 2026-11-23T13:00:00+00:00" in hint
    assert "within 30 days" in BookingConflict("busy", "gpu_conflict", [], None).hint()


def _hold(draw: st.DrawFn, i: int) -> Hold:
    gpu = draw(st.sampled_from(GPUS))
    start = draw(st.integers(0, 48)) * 30 * MINUTE + draw(st.sampled_from([0, 17]))
    length = draw(st.integers(1, 12)) * 30 * MINUTE
    if draw(st.booleans()):
        return booking(i, gpu, start, start + length, draw(st.sampled_from(["bob", "alice"])))
    user = draw(st.sampled_from(["bob", "alice"]))
    end = OPEN_END if draw(st.integers(0, 4)) == 0 else T0 + start + length
    return Hold(Holder.JOB, 100 + i, user, gpu, T0 + start, end)


@st.composite
def scenes(draw: st.DrawFn) -> tuple[dict[str, list[Hold]], Ask, tuple[str, ...], int | None]:
    holds: dict[str, list[Hold]] = {}
    for i in range(draw(st.integers(0, 14))):
        hold = _hold(draw, i)
        holds.setdefault(hold.gpu_id, []).append(hold)
    start = T0 + draw(st.integers(0, 40)) * 30 * MINUTE
    ask = Ask.booking("alice", start, start + draw(st.integers(1, 8)) * 30 * MINUTE)
    asked = tuple(draw(st.lists(st.sampled_from(GPUS), min_size=1, max_size=3, unique=True)))
    count = draw(st.none() | st.integers(1, len(asked)))
    return holds, ask, asked, count


def _fits(ask: Ask, holds: dict[str, list[Hold]], gpus: tuple[str, ...], need: int) -> list[str]:
    free = [g for g in gpus if judge(ask, holds.get(g, ())).ok]
    return free if len(free) >= need else []


@settings(max_examples=150, deadline=None)
@given(scenes())
def test_suggestion_is_free_and_none_earlier_is(
    scene: tuple[dict[str, list[Hold]], Ask, tuple[str, ...], int | None],
) -> None:
    holds, ask, asked, count = scene
    length = ask.end - ask.start
    need = len(asked) if count is None else count
    slot = next_free(ask, holds, asked, count, step=MINUTE, horizon=3 * 24 * HOUR)
    assert slot is not None  # every hold ends (or is open-ended) well within 3 days
    assert slot.end - slot.start == length and slot.start >= ask.start
    assert len(slot.gpu_ids) == need and set(slot.gpu_ids) <= set(asked)
    window = Ask.booking("alice", slot.start, slot.end)
    assert all(judge(window, holds.get(g, ())).ok for g in slot.gpu_ids)
    for start in range(ask.start, slot.start, MINUTE):
        earlier = Ask.booking("alice", start, start + length)
        assert not _fits(earlier, holds, asked, need), start
