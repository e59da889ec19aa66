"""Idle reclaim's pure rules (ADR 0013): from the GPUs' samples and the previous state to
the next state and action, as a table."""

from __future__ import annotations

import pytest

from procplan.core.idle import (
    Action,
    GpuSample,
    IdleSettings,
    IdleState,
    Use,
    booking_idle,
    booking_released,
    booking_use,
    decide,
    enabled_for,
    gpu_use,
)
from procplan.core.model import Booking, BookingStatus, Priority
from procplan.core.notes import NoteKind

MIN = 60
T0 = 1_795_428_000
ON = IdleSettings(
    enabled=True, after_s=30 * MIN, memory_after_s=120 * MIN, util_pct=5.0, memory_mb=500,
    grace_s=15 * MIN,
)  # fmt: skip
EMPTY = GpuSample(0.0, 0)
HOLDING = GpuSample(0.0, 20_000)
BUSY = GpuSample(80.0, 20_000)
OWNED = GpuSample(0.0, 0, owner_process=True)


@pytest.mark.parametrize(
    ("sample", "use"),
    [
        (EMPTY, Use.IDLE),
        (GpuSample(5.0, 500), Use.IDLE),  # at the thresholds: still idle
        (GpuSample(5.1, 0), Use.BUSY),
        (HOLDING, Use.HOLDING),
        (BUSY, Use.BUSY),
        (OWNED, Use.BUSY),  # the owner's process: not idle, whatever the numbers say
        (GpuSample(None, 0), Use.UNKNOWN),
        (None, Use.UNKNOWN),
        (GpuSample(0.0, None), Use.IDLE),  # memory not reported: utilization decides
    ],
)
def test_gpu_use(sample: GpuSample | None, use: Use) -> None:
    assert gpu_use(sample, ON) is use


@pytest.mark.parametrize(
    ("samples", "use"),
    [
        ([EMPTY, EMPTY], Use.IDLE),
        ([EMPTY, HOLDING], Use.HOLDING),
        ([EMPTY, BUSY], Use.BUSY),  # one busy GPU keeps the whole booking
        ([EMPTY, None], Use.UNKNOWN),
        ([BUSY, None], Use.BUSY),
        ([], Use.UNKNOWN),
    ],
)
def test_booking_use(samples: list[GpuSample | None], use: Use) -> None:
    assert booking_use(samples, ON) is use


def test_idle_for_the_threshold_warns_then_releases_after_the_grace() -> None:
    first = decide(IdleState(), Use.IDLE, ON, True, T0)
    assert (first.state, first.action) == (IdleState(since=T0), Action.NONE)
    early = decide(first.state, Use.IDLE, ON, True, T0 + 29 * MIN)
    assert early.action is Action.NONE
    warn = decide(early.state, Use.IDLE, ON, True, T0 + 30 * MIN)
    assert warn.action is Action.WARN
    assert warn.state == IdleState(since=T0, warned_at=T0 + 30 * MIN)
    again = decide(warn.state, Use.IDLE, ON, True, T0 + 31 * MIN)
    assert (again.action, again.state) == (Action.NONE, warn.state)  # warned once
    release = decide(again.state, Use.IDLE, ON, True, T0 + 45 * MIN)
    assert release.action is Action.RELEASE
    assert release.reason == "idle: no process of its owner and <= 5 % utilization for 45 min"
    assert release.state.released_reason == release.reason


def test_use_after_the_warning_starts_everything_over() -> None:
    warned = IdleState(since=T0, warned_at=T0 + 30 * MIN)
    busy = decide(warned, Use.BUSY, ON, True, T0 + 40 * MIN)
    assert (busy.state, busy.action) == (IdleState(), Action.NONE)
    again = decide(busy.state, Use.IDLE, ON, True, T0 + 41 * MIN)
    assert again.state == IdleState(since=T0 + 41 * MIN)


def test_memory_held_at_zero_utilization_waits_the_longer_threshold() -> None:
    state = decide(IdleState(), Use.HOLDING, ON, True, T0).state
    assert decide(state, Use.HOLDING, ON, True, T0 + 119 * MIN).action is Action.NONE
    warn = decide(state, Use.HOLDING, ON, True, T0 + 120 * MIN)
    assert warn.action is Action.WARN
    release = decide(warn.state, Use.HOLDING, ON, True, T0 + 135 * MIN)
    assert release.action is Action.RELEASE
    assert "(memory held) for 135 min" in release.reason


def test_unknown_readings_start_over_rather_than_count() -> None:
    warned = IdleState(since=T0, warned_at=T0 + 30 * MIN)
    assert decide(warned, Use.UNKNOWN, ON, True, T0 + 50 * MIN).state == IdleState()


def test_keep_is_never_touched() -> None:
    kept = IdleState(keep=True)
    for now in (T0, T0 + 10 * 60 * MIN):
        assert decide(kept, Use.IDLE, ON, True, now) == decide(kept, Use.IDLE, ON, True, T0)
        assert decide(kept, Use.IDLE, ON, True, now).action is Action.NONE
        assert decide(kept, Use.IDLE, ON, True, now).state == kept


def test_disabled_does_nothing_and_forgets() -> None:
    warned = IdleState(since=T0, warned_at=T0 + 30 * MIN)
    off = decide(warned, Use.IDLE, ON, False, T0 + 60 * MIN)
    assert (off.state, off.action) == (IdleState(), Action.NONE)


@pytest.mark.parametrize(
    ("cluster", "tenant", "enabled"),
    [(False, None, False), (True, None, True), (False, True, True), (True, False, False)],
)
def test_tenant_override(cluster: bool, tenant: bool | None, enabled: bool) -> None:
    assert enabled_for(cluster, tenant) is enabled


def test_notes_name_the_owner_and_are_keyed_per_event() -> None:
    booking = Booking(
        7, "node-a", ("node-a-gpu0",), T0, T0 + 8 * 60 * MIN, "alice", "train",
        Priority.MEDIUM, BookingStatus.ACTIVE, T0,
    )  # fmt: skip
    warn = booking_idle(booking, IdleState(since=T0, warned_at=T0 + 30 * MIN), T0 + 45 * MIN)
    assert (warn.kind, warn.user, warn.key) == (
        NoteKind.BOOKING_IDLE,
        "alice",
        f"booking:7:idle:{T0}",
    )
    assert "procplan keep 7" in warn.body
    released = booking_released(booking, "idle: because", T0 + 45 * MIN)
    assert (released.kind, released.user) == (NoteKind.BOOKING_RELEASED, "alice")
    assert "idle: because" in released.body
