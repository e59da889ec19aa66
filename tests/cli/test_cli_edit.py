"""``procplan edit BOOKING_ID`` (issue #17, ADR 0024): one PATCH with what the command line
names; the server's answer (or refusal, with who is in the way and the next free window)."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from procplan.cli.main import app

BOOKING = {
    "id": 7, "node_id": "node-a", "gpu_ids": ["node-a-gpu0"], "start": "2026-11-24T09:00:00+00:00",
    "end": "2026-11-24T11:00:00+00:00", "user": "alice", "label": "AB", "priority": "high",
    "status": "active", "created_at": "2026-11-22T08:00:00+00:00",
}  # fmt: skip


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def booked(env: dict[str, str], *args: str) -> dict[str, Any]:
    made = run(env, "book", "node-a", *args, "--json")
    assert made.exit_code == 0, made.output
    booking: dict[str, Any] = json.loads(made.stdout)["booking"]
    return booking


def test_edit_moves_regroups_and_relabels(live):
    env = live.env("alice")
    booking = booked(env, "--gpu", "0", "--start", "tomorrow 09:00", "-d", "1h")
    moved = run(env, "edit", str(booking["id"]), "--start", "tomorrow 10:00", "-d", "2h")
    assert moved.exit_code == 0, moved.output
    assert moved.stdout.startswith(f"Updated #{booking['id']} node-a [node-a-gpu0] ")
    assert "10:00 → " in moved.stdout and " 12:00 (medium, active)" in moved.stdout
    longer = run(env, "edit", str(booking["id"]), "-d", "3h")  # from the current start
    assert " 13:00 (medium, active)" in longer.stdout, longer.output
    changed = run(
        env, "edit", str(booking["id"]), "--gpu", "1", "--gpu", "node-a-gpu2",
        "--label", "Paper", "--priority", "high", "--json",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    answer = json.loads(changed.stdout)
    assert answer["gpu_ids"] == ["node-a-gpu1", "node-a-gpu2"]
    assert (answer["label"], answer["priority"]) == ("Paper", "high")
    assert answer["start"].endswith("T10:00:00+00:00") and answer["end"].endswith("T13:00:00+00:00")


def test_a_conflict_prints_the_servers_message_and_exits_1(live):
    alice, bob = live.env("alice"), live.env("bob")
    mine = booked(alice, "--gpu", "0", "--start", "tomorrow 09:00", "-d", "1h")
    booked(bob, "--gpu", "3", "--start", "tomorrow 09:00", "-d", "2h")
    refused = run(alice, "edit", str(mine["id"]), "--gpu", "3")
    assert refused.exit_code == 1
    assert "already booked" in refused.stderr and "next free" in refused.stderr
    assert "held by" in refused.stderr and "bob" in refused.stderr
    others = run(bob, "edit", str(mine["id"]), "--label", "mine now")
    assert others.exit_code == 1 and others.stdout == "" and "owner" in others.stderr


def test_edit_sends_only_what_is_named(fake_server):
    fake_server.add("PATCH", "/api/v1/bookings/7", 200, BOOKING)
    env = {"PROCPLAN_URL": fake_server.url}
    result = run(env, "edit", "7", "--end", "2026-11-24T12:00Z", "--label", "AB")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Updated #7 node-a [node-a-gpu0]")
    [sent] = fake_server.calls("PATCH", "/api/v1/bookings/7")
    assert sent.json() == {"end": "2026-11-24T12:00:00+00:00", "label": "AB"}


def test_edit_usage_errors(fake_server):
    env = {"PROCPLAN_URL": fake_server.url}
    assert run(env, "edit", "7").exit_code == 2
    assert run(env, "edit", "7", "--end", "+2h", "-d", "1h").exit_code == 2
    assert run(env, "edit", "7", "--start", "someday").exit_code == 2
    assert fake_server.requests == []
