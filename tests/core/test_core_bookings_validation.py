"""Booking/window validation: each ProcPlan message, and the order in which they are checked."""

from __future__ import annotations

from dataclasses import replace

import pytest

from procplan.core.bookings import BookingLimits, human_duration, validate_request, validate_window
from procplan.core.errors import InvalidRequest
from procplan.core.model import BookingRequest, Gpu, Node
from procplan.core.timeutil import DAY, HOUR, MINUTE

NOW = 1_795_428_000  # a whole hour
NODE = Node("n", "N", (Gpu("g0", index=0), Gpu("g1", index=1)))
LIMITS = BookingLimits()
OK = BookingRequest("n", NOW, NOW + 2 * HOUR, "alice", "AB", gpu_count=1)


def message(req: BookingRequest, node: Node | None = NODE, *, whole_hours: bool = True) -> str:
    with pytest.raises(InvalidRequest) as info:
        validate_request(req, node, NOW, LIMITS, whole_hours=whole_hours)
    return info.value.message


def test_valid_requests_pass() -> None:
    validate_request(OK, NODE, NOW, LIMITS, whole_hours=True)
    validate_request(replace(OK, gpu_ids=("g1", "g0")), NODE, NOW, LIMITS, whole_hours=True)
    minute = replace(OK, start=NOW + MINUTE, end=NOW + 2 * MINUTE)
    validate_request(minute, NODE, NOW, LIMITS, whole_hours=False)
    past = replace(OK, start=NOW - HOUR)
    validate_request(past, NODE, NOW, LIMITS, whole_hours=True)
    longest = replace(OK, end=NOW + 31 * DAY)
    validate_request(longest, NODE, NOW, LIMITS, whole_hours=True)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"start": NOW + 1}, "Timestamps must align exactly on the hour"),
        ({"end": NOW + HOUR + MINUTE}, "Timestamps must align exactly on the hour"),
        ({"end": NOW}, "Booking end must be after start"),
        ({"end": NOW - HOUR}, "Booking end must be after start"),
        ({"label": "  "}, "User label must not be empty"),
        ({"label": "x" * 65}, "User label must be at most 64 characters"),
        ({"node_id": "zz"}, "Unknown node id 'zz'"),
        ({"start": NOW - 2 * HOUR}, "Booking start must not be more than 1 hour in the past"),
        ({"end": NOW + 31 * DAY + HOUR}, "Booking must not be longer than 31 days"),
        ({"gpu_ids": ("g0", "g0")}, "Duplicate GPU id 'g0'"),
        ({"gpu_ids": ("g0", "x")}, "One or more GPUs do not belong to the specified node"),
        ({"gpu_count": None}, "Either gpu_ids or a positive gpu_count must be provided"),
        ({"gpu_count": 0}, "Either gpu_ids or a positive gpu_count must be provided"),
        (
            {"gpu_count": -1, "gpu_ids": ()},
            "Either gpu_ids or a positive gpu_count must be provided",
        ),
        ({"gpu_count": 3}, "Not enough GPUs available for the requested window"),
    ],
)
def test_messages(changes: dict[str, object], expected: str) -> None:
    req = replace(OK, **changes)  # type: ignore[arg-type]
    node = None if req.node_id != "n" else NODE
    assert message(req, node) == expected


def test_minute_precision_message() -> None:
    req = replace(OK, start=NOW + 30)
    assert message(req, whole_hours=False) == "Timestamps must align on whole minutes"


def test_label_is_measured_after_strip() -> None:
    validate_request(replace(OK, label=" " + "x" * 64 + " "), NODE, NOW, LIMITS, whole_hours=True)


def test_check_order_first_problem_wins() -> None:
    everything_wrong = BookingRequest("zz", NOW + 1, NOW, "u", "", gpu_ids=("g0", "g0"))
    assert message(everything_wrong, None) == "Timestamps must align exactly on the hour"
    assert message(replace(everything_wrong, start=NOW), None) == "Booking end must be after start"
    no_label = replace(everything_wrong, start=NOW, end=NOW + HOUR)
    assert message(no_label, None) == "User label must not be empty"
    unknown = replace(no_label, label="AB")
    assert message(unknown, None) == "Unknown node id 'zz'"
    old_and_long = replace(OK, start=NOW - 5 * HOUR, end=NOW + 40 * DAY, gpu_count=9)
    assert message(old_and_long).startswith("Booking start must not be more than")
    long_and_big = replace(OK, end=NOW + 40 * DAY, gpu_count=9)
    assert message(long_and_big) == "Booking must not be longer than 31 days"


def test_limits_render_in_human_units() -> None:
    limits = BookingLimits(max_duration_s=36 * HOUR, max_past_s=90 * MINUTE, max_label_len=3)
    with pytest.raises(InvalidRequest, match="more than 90 minutes in the past"):
        validate_request(replace(OK, start=NOW - 2 * HOUR), NODE, NOW, limits, whole_hours=True)
    with pytest.raises(InvalidRequest, match="longer than 36 hours"):
        validate_request(replace(OK, end=NOW + 2 * DAY), NODE, NOW, limits, whole_hours=True)
    with pytest.raises(InvalidRequest, match="at most 3 characters"):
        validate_request(replace(OK, label="ABCD"), NODE, NOW, limits, whole_hours=True)
    assert [human_duration(s) for s in (1, 59, 60, DAY, 2 * DAY, 400 * DAY)] == [
        "1 second",
        "59 seconds",
        "1 minute",
        "1 day",
        "2 days",
        "400 days",
    ]


@pytest.mark.parametrize(
    ("start", "end", "whole_hours", "expected"),
    [
        (NOW + 1, NOW + HOUR, True, "Timestamps must align exactly on the hour"),
        (NOW + 1, NOW + HOUR, False, "Timestamps must align on whole minutes"),
        (NOW, NOW, True, "Availability end must be after start"),
        (NOW, NOW + 401 * DAY, True, "Availability window must not be longer than 400 days"),
    ],
)
def test_window(start: int, end: int, whole_hours: bool, expected: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_window(start, end, LIMITS, whole_hours=whole_hours)
    assert info.value.message == expected


def test_window_ok() -> None:
    validate_window(NOW, NOW + 400 * DAY, LIMITS, whole_hours=True)
    validate_window(NOW + MINUTE, NOW + 2 * MINUTE, LIMITS, whole_hours=False)


# ------------------------------------------------------------- release before start (#17)


def test_check_started_refuses_a_booking_that_has_not_begun() -> None:
    from procplan.core.bookings import check_started
    from procplan.core.errors import Conflict
    from procplan.core.model import Booking

    booking = Booking(5, "node-a", ("g0",), 7200, 10800, "alice", "AB")
    with pytest.raises(Conflict) as refused:
        check_started(booking, 7199)
    assert refused.value.code == "not_started" and refused.value.status == 409
    assert "cancel" in refused.value.message and "1970-01-01T02:00:00" in refused.value.message
    check_started(booking, 7200)  # from its first instant on it may be released
    check_started(booking, 9000)


# ------------------------------------------------------------- weekly series (#17)


def test_weekly_occurrences_until_and_cap() -> None:
    from procplan.core.bookings import MAX_OCCURRENCES, weekly_occurrences

    week = 7 * DAY
    assert weekly_occurrences(NOW, NOW + HOUR, NOW) == [(NOW, NOW + HOUR)]
    three = weekly_occurrences(NOW, NOW + HOUR, NOW + 2 * week + HOUR)
    assert three == [(NOW + i * week, NOW + i * week + HOUR) for i in range(3)]
    assert len(weekly_occurrences(NOW, NOW + HOUR, NOW + 51 * week)) == MAX_OCCURRENCES
    with pytest.raises(InvalidRequest) as many:
        weekly_occurrences(NOW, NOW + HOUR, NOW + 52 * week)
    assert many.value.code == "too_many_occurrences" and "53" in many.value.message
    for end, until in ((NOW + week + 1, NOW + week), (NOW + HOUR, NOW - 1)):
        with pytest.raises(InvalidRequest) as bad:
            weekly_occurrences(NOW, end, until)
        assert bad.value.code == "invalid_repeat"
