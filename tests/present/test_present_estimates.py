"""Estimates and relative times with a precision people can act on (issue #19 item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from procplan.present.jobs import estimate_text, relative, span_text, until

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (89, "89 s"),
        (90, "2 min"),
        (179, "3 min"),
        (3569, "59 min"),
        (3570, "1 h"),
        (7800, "2 h 10 min"),
        (86400, "1 d"),
        (97200, "1 d 3 h"),
        (-5, "0 s"),
    ],
)
def test_span_text(seconds: float, text: str) -> None:
    assert span_text(seconds) == text


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "now"),
        (-120, "now"),  # overdue: it may start at any moment
        (0.2, "in 1 s"),  # not yet now
        (10, "in 10 s"),
        (45, "in 45 s"),
        (180, "in 3 min"),
        (7800, "in 2 h 10 min"),
    ],
)
def test_until_says_now_only_when_due(seconds: float, text: str) -> None:
    assert until(at(seconds), NOW) == text
    assert until(at(seconds).isoformat(), NOW) == text  # wire text too


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (25, "in 25 s"),
        (-25, "now"),
        (6 * 3600, "in 6 h"),
        (2 * 3600 + 5 * 60, "in 2 h 5 min"),
        (6 * 3600 + 60, "at 18:01 UTC"),  # far: the clock time, same day
        (13 * 3600, "at Wed 01:00 UTC"),  # another day this week
        (10 * 86400, "at 2026-12-04 12:00 UTC"),
    ],
)
def test_estimate_text(seconds: float, text: str) -> None:
    assert estimate_text(at(seconds), NOW) == text


def test_estimates_and_relative_times_of_nothing_are_a_dash() -> None:
    assert (estimate_text(None, NOW), until(None, NOW), relative("garbage", NOW)) == ("—",) * 3


def test_relative_past_and_future() -> None:
    assert relative(at(-3 * 60), NOW) == "3 min ago"
    assert relative(at(-30), NOW) == "30 s ago"
    assert relative(at(30), NOW) == "in 30 s"
    assert relative(at(0.5), NOW) == "now"
