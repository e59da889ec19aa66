"""Issue #17 against the real app (demo cluster: node-a has 4 A100s): GPU indices, the
capacity message, and a human start time, end to end through the server's own answers."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from procplan.cli.main import app


def test_book_by_index_and_capacity_message(live):
    runner = CliRunner()
    env = live.env("alice")
    made = runner.invoke(
        app, ["book", "node-a", "--gpu", "3", "--start", "tomorrow 09:00", "-d", "1h"], env=env
    )
    assert made.exit_code == 0, made.output
    assert "[node-a-gpu3]" in made.stdout and "09:00 → " in made.stdout
    too_many = runner.invoke(app, ["book", "node-a", "-n", "9", "-d", "1h"], env=env)
    assert too_many.exit_code == 1
    assert too_many.stderr == "error: node-a has 4 GPUs (asked for 9)\n"
    listed = runner.invoke(app, ["bookings", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    [booking] = json.loads(listed.stdout)["bookings"]
    assert booking["gpu_ids"] == ["node-a-gpu3"]
    assert booking["start"].endswith("T09:00:00+00:00")  # PROCPLAN_TZ=UTC in these tests
