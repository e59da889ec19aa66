"""``procplan feed new|revoke`` (issue #17, ADR 0022): a calendar feed's URLs, printed once
with a hint for calendar apps, and revoking it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
from typer.testing import CliRunner

from procplan.cli.main import app


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def test_feed_new_prints_working_urls_and_revoke_stops_them(live):
    env = live.env("alice")
    booked = run(env, "book", "node-a", "--gpu", "0", "--start", "tomorrow 09:00", "-d", "1h")
    assert booked.exit_code == 0, booked.output
    made = run(env, "feed", "new")
    assert made.exit_code == 0, made.output
    lines = made.stdout.splitlines()
    assert lines[0].startswith("Your bookings (alice): http")
    user_url = lines[0].split(": ", 1)[1]
    node_lines = [line for line in lines if line.startswith("Node node-a: ")]
    assert len(node_lines) == 1 and "{node_id}" not in node_lines[0]
    assert "Google Calendar" in made.stderr and "Thunderbird" in made.stderr
    feed = httpx.get(user_url)
    assert feed.status_code == 200 and "BEGIN:VCALENDAR" in feed.text
    node_feed = httpx.get(node_lines[0].split(": ", 1)[1])
    assert node_feed.status_code == 200 and "VEVENT" in node_feed.text
    revoked = run(env, "feed", "revoke")
    assert revoked.exit_code == 0, revoked.output
    assert revoked.stdout == "Revoked the calendar feed of alice.\n"
    assert httpx.get(user_url).status_code == 404
    again = run(env, "feed", "revoke", "--json")
    assert json.loads(again.stdout)["user"] == "alice"


def test_feed_new_json(live):
    env = live.env("bob")
    made = run(env, "feed", "new", "--json")
    assert made.exit_code == 0, made.output
    answer = json.loads(made.stdout)
    assert answer["user"] == "bob" and urlsplit(answer["url"]).path.endswith("/user.ics")
    assert set(answer["node_urls"]) >= {"node-a", "node-b"}
    assert answer["node_urls"]["node-a"] == answer["node_url"].replace("{node_id}", "node-a")


def test_feed_needs_a_user(live):
    refused = run(live.env(), "feed", "new")
    assert refused.exit_code == 1 and refused.stdout == ""


def test_feed_without_subcommand_shows_help(fake_server):
    shown = run({"PROCPLAN_URL": fake_server.url}, "feed")
    assert "new" in shown.output and "revoke" in shown.output
    assert fake_server.requests == []
