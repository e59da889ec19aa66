"""``procplan node drain|resume|remove|list`` and the drain in ``procplan nodes`` (ADR 0020),
against the demo cluster served in-process on loopback TCP (``live``)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from procplan.cli.main import app
from procplan.core.identity import Role


def run(live, *args: str, user: str = "root-admin", role: Role = Role.ADMIN):
    return CliRunner().invoke(app, list(args), env=live.env(user, role))


def test_drain_shows_in_node_list_and_nodes_and_resume_clears_it(live) -> None:
    out = run(live, "node", "drain", "node-a", "--reason", "PSU swap")
    assert out.exit_code == 0, out.output
    assert out.stdout.startswith("Drained node node-a")

    listed = run(live, "node", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if "node-a" in line)
    assert "drained" in row and "PSU swap" in row and "root-admin" in row
    assert "idle" in next(line for line in listed.stdout.splitlines() if "node-b" in line)
    assert "STATE" in listed.stdout and "REASON" in listed.stdout

    gpustat = run(live, "nodes", "--node", "node-a")
    assert "drained: PSU swap" in gpustat.stdout, gpustat.output

    raw = run(live, "node", "list", "--json")
    states = {n["id"]: n["sched_state"] for n in json.loads(raw.stdout)}
    assert states["node-a"] == "drained"

    out = run(live, "node", "resume", "node-a")
    assert (out.exit_code, out.stdout.strip()) == (0, "Resumed node node-a")
    assert "PSU swap" not in run(live, "node", "list").stdout


def test_a_plain_user_is_refused_and_an_unknown_node_named(live) -> None:
    out = run(live, "node", "drain", "node-a", user="mallory", role=Role.USER)
    assert out.exit_code != 0
    assert "admin" in out.stderr
    out = run(live, "node", "remove", "ghost")
    assert out.exit_code != 0
    assert "ghost" in out.stderr


def test_remove_then_resume(live) -> None:
    out = run(live, "node", "remove", "node-b", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["removed"] is True
    assert "node-b" not in run(live, "node", "list").stdout
    assert run(live, "node", "resume", "node-b").exit_code == 0
    assert "node-b" in run(live, "node", "list").stdout


def test_a_hostile_reason_is_refused_before_it_reaches_a_terminal(live) -> None:
    out = run(live, "node", "drain", "node-a", "--reason", "\x1b]0;pwned\x07")
    assert out.exit_code != 0
    assert "\x1b" not in out.output
