"""Human time arguments: compact durations and ISO/now instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from procplan.cli.durations import ceil_minute, parse_duration, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("90m", timedelta(minutes=90)),
        ("90min", timedelta(minutes=90)),
        ("3d", timedelta(days=3)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1w", timedelta(weeks=1)),
        (" 1H 30M ", timedelta(hours=1, minutes=30)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "1h2d", "-1h", "0m", "1.5h"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


NOW = datetime(2026, 11, 24, 9, 15, 30, tzinfo=UTC)


def test_now_rounds_up_to_the_next_minute():
    assert parse_instant("now", NOW) == datetime(2026, 11, 24, 9, 16, tzinfo=UTC)
    assert ceil_minute(datetime(2026, 11, 24, 9, 16, tzinfo=UTC)).minute == 16


def test_iso_instants_are_utc():
    assert parse_instant("2026-11-24T09:00", NOW) == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert parse_instant("2026-11-24T10:00+01:00", NOW) == datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert parse_instant("2026-11-24", NOW) == datetime(2026, 11, 24, tzinfo=UTC)


def test_bad_instant():
    with pytest.raises(ValueError, match="invalid time 'soon'"):
        parse_instant("soon", NOW)
