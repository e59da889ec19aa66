"""``procplan book ... --weekly-until DATE`` (issue #17): the series is listed first (the
server's dry run), then booked whole, or not at all when an occurrence is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from typer.testing import CliRunner

from procplan.cli.durations import set_display_zone
from procplan.cli.main import app
from procplan.cli.weekly import series_until


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def two_weeks_on() -> str:
    """The day two weeks after tomorrow (UTC): a series from tomorrow has three bookings."""
    return (datetime.now(UTC) + timedelta(days=15)).date().isoformat()


def mine(env: dict[str, str]) -> list[dict[str, Any]]:
    listed = run(env, "bookings", "--json")
    assert listed.exit_code == 0, listed.output
    rows: list[dict[str, Any]] = json.loads(listed.stdout)["bookings"]
    return rows


SERIES = ("book", "node-a", "--gpu", "0", "--start", "tomorrow 09:00", "-d", "1h")


def test_a_weekly_series_is_listed_then_booked(live):
    env = live.env("alice")
    made = run(env, *SERIES, "--weekly-until", two_weeks_on())
    assert made.exit_code == 0, made.output
    lines = made.stdout.splitlines()
    assert sum(line.startswith("  would book node-a [node-a-gpu0]") for line in lines) == 3
    assert "Booked 3 weekly bookings:" in lines
    starts = sorted(b["start"] for b in mine(env))
    assert len(starts) == 3 and all(s.endswith("T09:00:00+00:00") for s in starts)


def test_dry_run_books_nothing(live):
    env = live.env("alice")
    preview = run(env, *SERIES, "--weekly-until", two_weeks_on(), "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert preview.stdout.count("would book") == 3 and "Nothing booked" in preview.stdout
    as_json = run(env, *SERIES, "--weekly-until", two_weeks_on(), "--dry-run", "--json")
    assert [b["id"] for b in json.loads(as_json.stdout)["bookings"]] == [0, 0, 0]
    assert mine(env) == []


def test_one_refusal_books_nothing_and_says_why(live):
    alice, bob = live.env("alice"), live.env("bob")
    week_later = (datetime.now(UTC) + timedelta(days=8)).date().isoformat()
    blocker = run(
        bob, "book", "node-a", "--gpu", "0", "--start", f"{week_later}T09:30Z", "-d", "1h"
    )
    assert blocker.exit_code == 0, blocker.output
    refused = run(alice, *SERIES, "--weekly-until", two_weeks_on())
    assert refused.exit_code == 1
    assert refused.stdout.count("would book") == 2
    assert "refused" in refused.stdout and "next free" in refused.stdout
    assert "1 of 3 weekly bookings are refused; nothing was booked" in refused.stderr
    assert mine(alice) == []


def test_json_prints_the_booked_series(live):
    env = live.env("alice")
    made = run(env, *SERIES, "--weekly-until", two_weeks_on(), "--json")
    assert made.exit_code == 0, made.output
    answer = json.loads(made.stdout)
    assert len(answer["bookings"]) == 3 and all(b["id"] > 0 for b in answer["bookings"])
    assert answer["conflicts"] == []


def test_until_is_the_users_day_in_their_zone():
    set_display_zone("America/Los_Angeles")
    try:
        start = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # Monday 20:00 in Los Angeles
        until = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # Monday 7 December there
        # The third occurrence starts 7 December 20:00 there (8 December UTC): included.
        assert series_until(start, until) == "2026-12-08T04:00:00+00:00"
        assert series_until(start, datetime(2026, 11, 20, tzinfo=UTC)).startswith("2026-11-20")
    finally:
        set_display_zone("UTC")
