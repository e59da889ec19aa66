"""Human time arguments: compact durations and ISO/now instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from procplan.cli.durations import (
    ceil_minute,
    load_zone,
    parse_duration,
    parse_instant,
    parse_when,
    set_display_zone,
    zone_name,
)


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


# -- human instants (issue #17): a fixed "now" and zone ---------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
# Tuesday 2026-11-24 10:15:30 in Berlin (UTC+1)
LOCAL_NOW = datetime(2026, 11, 24, 9, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", datetime(2026, 11, 24, 9, 16, tzinfo=UTC)),
        ("+2h", datetime(2026, 11, 24, 11, 16, tzinfo=UTC)),
        ("+30m", datetime(2026, 11, 24, 9, 46, tzinfo=UTC)),
        ("+1d", datetime(2026, 11, 25, 9, 16, tzinfo=UTC)),
        ("today 14:00", datetime(2026, 11, 24, 13, tzinfo=UTC)),
        ("tomorrow 09:00", datetime(2026, 11, 25, 8, tzinfo=UTC)),
        ("Tomorrow  9", datetime(2026, 11, 25, 8, tzinfo=UTC)),
        ("tomorrow", datetime(2026, 11, 24, 23, tzinfo=UTC)),
        ("mon 14:00", datetime(2026, 11, 30, 13, tzinfo=UTC)),
        ("monday 14:00", datetime(2026, 11, 30, 13, tzinfo=UTC)),
        ("tue 14:00", datetime(2026, 11, 24, 13, tzinfo=UTC)),  # today, still ahead
        ("tue 09:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),  # today's has passed
        ("2026-11-24T09:00", datetime(2026, 11, 24, 8, tzinfo=UTC)),  # naive: local
        ("2026-11-24T09:00Z", datetime(2026, 11, 24, 9, tzinfo=UTC)),
        ("2026-11-24T09:00-05:00", datetime(2026, 11, 24, 14, tzinfo=UTC)),
    ],
)
def test_human_instants_in_a_zone(text, expected):
    assert parse_when(text, LOCAL_NOW, BERLIN) == expected


def test_wall_clock_forms_follow_the_clock_change():
    # Saturday 2026-03-28 in Berlin (UTC+1); clocks go forward Sunday 02:00 → 03:00 (UTC+2)
    now = datetime(2026, 3, 28, 12, tzinfo=UTC)
    assert parse_when("tomorrow 09:00", now, BERLIN) == datetime(2026, 3, 29, 7, tzinfo=UTC)
    assert parse_when("+1d", now, BERLIN) == datetime(2026, 3, 29, 12, tzinfo=UTC)  # 24 real h
    with pytest.raises(ValueError, match="does not exist in Europe/Berlin"):
        parse_when("tomorrow 02:30", now, BERLIN)
    # fall back (2026-10-25 03:00 → 02:00): 02:30 happens twice, the first one is meant
    autumn = datetime(2026, 10, 24, 12, tzinfo=UTC)
    assert parse_when("tomorrow 02:30", autumn, BERLIN) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["soon", "+2", "+", "tomorrow 25:00", "mo 14:00", "next week", "2026-13-01", ""]
)
def test_bad_human_instants_say_what_works(text):
    with pytest.raises(ValueError, match="invalid time") as caught:
        parse_when(text, LOCAL_NOW, BERLIN)
    assert "tomorrow 09:00" in str(caught.value) or "hour is 0-23" in str(caught.value)


def test_zones_by_name_and_unknown_zone():
    assert load_zone("utc") is UTC
    assert zone_name(load_zone("Europe/Berlin")) == "Europe/Berlin"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        load_zone("Mars/Base")


def test_display_zone_from_the_environment(monkeypatch):
    monkeypatch.setenv("PROCPLAN_TZ", "Asia/Tokyo")
    assert zone_name(set_display_zone(None)) == "Asia/Tokyo"
    assert zone_name(set_display_zone("UTC")) == "UTC"  # --tz wins
    monkeypatch.setenv("PROCPLAN_TZ", "Mars/Base")
    with pytest.raises(ValueError, match="unknown time zone"):
        set_display_zone(None)
    monkeypatch.setenv("TZ", "Europe/Berlin")
    assert zone_name(set_display_zone(None, use_env=False)) == "Europe/Berlin"  # the machine's
