"""``procplan notify add|list|test|remove`` against the real app on loopback TCP: secrets in
a channel's URL are never printed, errors say why, and the last delivery shows in the list."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from procplan.cli.main import app

HOOK = "json://hooks.example.org/s3cr3t?token=abc"


@pytest.fixture
def cli(live):
    runner = CliRunner()
    env = live.env("alice")

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=env)

    return invoke


def test_add_list_test_remove(cli):
    added = cli("notify", "add", HOOK, "--events", "job.failed,booking", "--label", "bot")
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("Added channel 1 (json://hooks.example.org/…)")
    listed = cli("notify", "list")
    assert listed.exit_code == 0, listed.output
    assert "json://hooks.example.org/…" in listed.stdout and "job.failed, booking" in listed.stdout
    assert "s3cr3t" not in listed.stdout
    raw = json.loads(cli("notify", "list", "--json").stdout)
    assert [c["label"] for c in raw] == ["bot"]
    assert cli("notify", "add", "json://127.0.0.1:9/x").exit_code == 0  # nobody listens there
    tried = cli("notify", "test", "2")
    assert tried.exit_code == 1 and "procplan: channel 2:" in tried.output
    assert "error" in cli("notify", "list").stdout
    for channel in ("1", "2"):
        removed = cli("notify", "remove", channel)
        assert removed.exit_code == 0 and removed.stdout.strip() == f"Removed channel {channel}"
    assert "No notification channels." in cli("notify", "list").output


def test_bad_input_says_why(cli):
    bad = cli("notify", "add", "nonsense://x")
    assert bad.exit_code == 1 and "apprise" in bad.output
    unknown = cli("notify", "add", HOOK, "--events", "job.exploded")
    assert unknown.exit_code == 1 and "unknown event 'job.exploded'" in unknown.output
    assert cli("notify", "remove", "77").exit_code == 1
