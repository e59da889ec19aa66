"""The ``procplan`` Typer app against a canned server: requests sent, output, exit codes."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from procplan.cli.main import app
from procplan.cli.weektable import render_week_table
from procplan.client import current_user

BOOKING = {
    "id": 7,
    "node_id": "node-a",
    "gpu_ids": ["node-a-gpu0", "node-a-gpu1"],
    "start": "2026-11-24T09:00:00+00:00",
    "end": "2026-11-24T11:00:00+00:00",
    "user": "alice",
    "label": "AB",
    "priority": "high",
    "status": "active",
    "created_at": "2026-11-22T08:00:00+00:00",
}
SUMMARY = "#7 node-a [node-a-gpu0, node-a-gpu1] 2026-11-24 09:00 → 2026-11-24 11:00 (high, active)"


NODE_A = {
    "id": "node-a",
    "gpus": [{"id": f"node-a-gpu{i}", "index": i, "kind": "A100"} for i in range(4)],
}


def test_book_sends_native_request_and_prints_summary(cli, fake_server):
    fake_server.add("GET", "/api/v1/nodes/node-a", 200, NODE_A)
    fake_server.add(
        "POST", "/api/v1/bookings", 201, {"booking": BOOKING, "conflicts_with_jobs": []}
    )
    result = cli(
        "book", "node-a", "--gpu", "node-a-gpu0", "--gpu", "node-a-gpu1",
        "--start", "2026-11-24T09:00", "--duration", "2h", "--priority", "high", "--label", "AB",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Booked {SUMMARY}\n"
    assert fake_server.calls("POST", "/api/v1/bookings")[0].json() == {
        "node_id": "node-a",
        "gpu_ids": ["node-a-gpu0", "node-a-gpu1"],
        "start": "2026-11-24T09:00:00+00:00",
        "duration_minutes": 120,
        "priority": "high",
        "label": "AB",
    }
    headers = fake_server.calls("POST", "/api/v1/bookings")[0].headers
    assert "X-ProcPlan-User" not in headers  # nobody to act for: the server knows who we are
    assert "Authorization" not in headers and "Cookie" not in headers


def test_book_as_another_user_sends_the_acting_for_header(cli, fake_server):
    fake_server.add("POST", "/api/v1/bookings", 201, {"booking": BOOKING})
    assert cli("book", "node-a", "--duration", "1h", "--as", "alice").exit_code == 0
    assert cli("book", "node-a", "--duration", "1h", env={"PROCPLAN_AS": "bob"}).exit_code == 0
    flag = cli("book", "node-a", "--duration", "1h", "--as", "carol", env={"PROCPLAN_AS": "bob"})
    assert flag.exit_code == 0
    sent = [r.headers.get("X-ProcPlan-User") for r in fake_server.requests]
    assert sent == ["alice", "bob", "carol"]


def test_book_defaults_to_one_gpu_starting_now(cli, fake_server):
    fake_server.add("POST", "/api/v1/bookings", 201, {"booking": BOOKING})
    result = cli("book", "node-a", "--end", "2030-01-01T00:00")
    assert result.exit_code == 0, result.output
    body = fake_server.requests[0].json()
    assert body["gpu_count"] == 1
    assert body["end"] == "2030-01-01T00:00:00+00:00"
    assert body["start"].endswith(":00+00:00")


@pytest.mark.parametrize(
    "args",
    [
        ["book", "node-a", "--gpu", "g0", "-n", "2", "--duration", "1h"],
        ["book", "node-a"],
        ["book", "node-a", "--duration", "1h", "--end", "2030-01-01T00:00"],
        ["book", "node-a", "--duration", "soon"],
        ["book", "node-a", "--duration", "1h", "--start", "next week"],
        ["extend", "7"],
    ],
)
def test_bad_arguments_are_usage_errors(cli, fake_server, args):
    result = cli(*args)
    assert result.exit_code == 2
    assert fake_server.requests == []


def test_refusal_shows_server_message_and_exits_1(cli, fake_server):
    error = {"error": "GPU 'node-a-gpu0' is already booked", "status": 409, "code": "conflict"}
    fake_server.add("POST", "/api/v1/bookings", 409, error)
    result = cli("book", "node-a", "-n", "1", "--duration", "1h")
    assert result.exit_code == 1
    assert result.stderr == "error: GPU 'node-a-gpu0' is already booked\n"


def test_unreachable_server_exits_2(cli, dead_url):
    result = cli("nodes", "--url", dead_url)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cannot reach ProcPlan server at {dead_url}: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bookings_defaults_to_mine(cli, fake_server):
    """ "Mine" is whom the server takes us for (a token's user need not be our login)."""
    fake_server.add("GET", "/api/v1/me", 200, {"user": "alice", "via": "token"})
    fake_server.add("GET", "/api/v1/bookings", 200, {"bookings": [BOOKING], "total": 250})
    result = cli("bookings", "--status", "active")
    assert result.exit_code == 0, result.output
    assert "node-a-gpu0, node-a-gpu1" in result.stdout
    assert "2026-11-24 09:00" in result.stdout
    assert "Showing 1 of 250" in result.stdout
    query = fake_server.calls("GET", "/api/v1/bookings")[0].query
    assert query == {"user": ["alice"], "status": ["active"], "limit": ["100"]}


def test_bookings_mine_falls_back_to_the_login_name(cli, fake_server):
    """A server without ``/me`` (404), or one that does not know us, means our login name;
    ``--as`` means the user acted for, without asking."""
    fake_server.add("GET", "/api/v1/bookings", 200, {"bookings": [], "total": 0})
    assert cli("bookings").exit_code == 0
    fake_server.add("GET", "/api/v1/me", 200, {"user": None, "via": "anonymous"})
    assert cli("bookings").exit_code == 0
    assert cli("bookings", "--as", "bob").exit_code == 0
    users = [r.query["user"] for r in fake_server.calls("GET", "/api/v1/bookings")]
    assert users == [[current_user()], [current_user()], ["bob"]]
    assert len(fake_server.calls("GET", "/api/v1/me")) == 2


def test_bookings_all_drops_the_user_filter(cli, fake_server):
    fake_server.add("GET", "/api/v1/bookings", 200, {"bookings": [], "total": 0})
    result = cli("bookings", "--all", "--node", "node-b")
    assert (result.exit_code, result.stdout) == (0, "No bookings.\n")
    assert fake_server.requests[0].query == {"node": ["node-b"], "limit": ["100"]}


def test_cancel_booking_and_release(cli, fake_server):
    fake_server.add("POST", "/api/v1/bookings/7/cancel", 200, {**BOOKING, "status": "cancelled"})
    fake_server.add("POST", "/api/v1/bookings/7/release", 200, BOOKING)
    assert cli("cancel", "--booking", "7").stdout.startswith("Cancelled #7 node-a")
    assert cli("release", "7").stdout == f"Released {SUMMARY}\n"
    assert [r.path for r in fake_server.requests] == [
        "/api/v1/bookings/7/cancel",
        "/api/v1/bookings/7/release",
    ]


def test_cancel_booking_refused_exits_1(cli, fake_server):
    error = {"error": "Booking 8 does not exist", "status": 404}
    fake_server.add("POST", "/api/v1/bookings/7/cancel", 200, BOOKING)
    fake_server.add("POST", "/api/v1/bookings/8/cancel", 404, error)
    result = cli("cancel", "--booking", "8", "--booking", "7")
    assert result.exit_code == 1
    assert result.stdout.startswith("Cancelled #7 node-a")
    assert result.stderr == "error: booking 8: Booking 8 does not exist\n"


def test_extend_by_adds_to_the_current_end(cli, fake_server):
    fake_server.add("GET", "/api/v1/bookings/7", 200, BOOKING)
    fake_server.add("PATCH", "/api/v1/bookings/7", 200, BOOKING)
    result = cli("extend", "7", "--by", "1h30m")
    assert result.exit_code == 0, result.output
    patch = fake_server.calls("PATCH", "/api/v1/bookings/7")[0]
    assert patch.json() == {"end": "2026-11-24T12:30:00+00:00"}


def test_extend_to_a_given_end(cli, fake_server):
    fake_server.add("PATCH", "/api/v1/bookings/7", 200, BOOKING)
    result = cli("extend", "7", "--end", "2026-11-24T10:00+01:00")
    assert result.exit_code == 0, result.output
    assert fake_server.requests[0].json() == {"end": "2026-11-24T09:00:00+00:00"}


NODES = {"nodes": [{"id": "node-a", "name": "A"}, {"id": "node-b", "name": "B"}]}


def test_calendar_falls_back_to_all_nodes(cli, fake_server, make_day_payload, booking):
    payload = make_day_payload({"node-a-gpu1": {0: [booking("AB", "low")]}}, days=1)
    fake_server.add("GET", "/api/nodes", 200, NODES)
    fake_server.add("POST", "/api/availability_bulk", 200, {"availability": [payload, payload]})
    result = cli("calendar", "--date", "2026-11-23")
    assert result.exit_code == 0, result.output
    table = render_week_table(payload)
    assert result.stdout == table + "\n" + table
    assert fake_server.calls("POST", "/api/availability_bulk")[0].json() == {
        "node_ids": ["node-a", "node-b"],
        "start": "2026-11-23T00:00:00+00:00",
        "end": "2026-11-24T00:00:00+00:00",
        "granularity": "day",
    }


def test_calendar_unknown_node_exits_1(cli, fake_server):
    fake_server.add("GET", "/api/nodes", 200, NODES)
    result = cli("calendar", "--node", "zz")
    assert result.exit_code == 1
    assert result.stderr == (
        "No matching nodes found for filter(s): zz. Use --all to list every node.\n"
    )


def test_calendar_bad_date_is_a_usage_error(cli, fake_server):
    assert cli("calendar", "--date", "June").exit_code == 2
    assert fake_server.requests == []


def test_server_with_missing_settings_file_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["server", "--settings", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2
    assert "invalid settings" in result.stderr


def test_book_dry_run_asks_the_check_route_and_books_nothing(cli, fake_server):
    preview = {
        "node_id": "node-a",
        "gpu_ids": ["node-a-gpu0"],
        "start": "2026-11-24T09:00:00+00:00",
        "end": "2026-11-24T11:00:00+00:00",
        "user": "alice",
        "conflicts_with_jobs": [
            {"job_id": "7", "user": "bob", "gpu_ids": ["node-a-gpu0"], "action": "SIGTERM at 9"}
        ],
    }
    fake_server.add("POST", "/api/v1/bookings/check", 200, preview)
    result = cli("book", "node-a", "--start", "2026-11-24T09:00", "--duration", "2h", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Would book node-a [node-a-gpu0] 2026-11-24 09:00 → 2026-11-24 11:00 "
        "(nothing booked: --dry-run)\n"
    )
    assert result.stderr == "warning: open-ended job 7 of bob holds on node-a-gpu0: SIGTERM at 9\n"
    assert [r.path for r in fake_server.requests] == ["/api/v1/bookings/check"]


# -- issue #17: the command line as people use it ---------------------------------------------


def flat(output: str) -> str:
    """A usage error's text without Rich's box and line breaks."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


def test_gpu_index_means_that_gpu_of_the_node(cli, fake_server):
    fake_server.add("GET", "/api/v1/nodes/node-a", 200, NODE_A)
    fake_server.add("POST", "/api/v1/bookings", 201, {"booking": BOOKING})
    result = cli("book", "node-a", "--gpu", "3", "--gpu", "node-a-gpu1", "--duration", "1h")
    assert result.exit_code == 0, result.output
    assert fake_server.calls("POST", "/api/v1/bookings")[0].json()["gpu_ids"] == [
        "node-a-gpu3",
        "node-a-gpu1",
    ]


def test_unknown_gpu_lists_the_valid_ones(cli, fake_server):
    fake_server.add("GET", "/api/v1/nodes/node-a", 200, NODE_A)
    result = cli("book", "node-a", "--gpu", "7", "--duration", "1h")
    assert result.exit_code == 2
    message = flat(result.output)
    assert "node node-a has no GPU '7'; its GPUs are: 0 (node-a-gpu0), 1 (node-a-gpu1), " in message
    assert "2 (node-a-gpu2), 3 (node-a-gpu3)" in message
    assert fake_server.calls("POST", "/api/v1/bookings") == []


def test_too_many_gpus_says_how_many_the_node_has(cli, fake_server):
    short = {"error": "Not enough GPUs available for the requested window", "status": 409}
    fake_server.add("POST", "/api/v1/bookings", 409, {**short, "code": "not_enough_gpus"})
    fake_server.add("GET", "/api/v1/nodes/node-a", 200, NODE_A)
    result = cli("book", "node-a", "-n", "9", "--duration", "1h")
    assert result.exit_code == 1
    assert result.stderr == "error: node-a has 4 GPUs (asked for 9)\n"
    fits = cli("book", "node-a", "-n", "3", "--duration", "1h")  # fits the node, not the window
    assert fits.exit_code == 1
    assert fits.stderr == "error: Not enough GPUs available for the requested window\n"


def test_cancel_job_ids_and_booking_are_not_mixed(cli, fake_server):
    result = cli("cancel", "17", "--booking", "5")
    assert result.exit_code == 2
    assert "give job ids or --booking, not both" in flat(result.output)
    assert fake_server.requests == []


def test_human_start_is_local_time_in_the_chosen_zone(cli, fake_server):
    fake_server.add("POST", "/api/v1/bookings", 201, {"booking": BOOKING})
    result = cli(
        "--tz", "Europe/Berlin", "book", "node-a", "--start", "2026-11-24T10:00", "-d", "2h"
    )
    assert result.exit_code == 0, result.output
    assert fake_server.requests[0].json()["start"] == "2026-11-24T09:00:00+00:00"
    # shown back in that zone: BOOKING starts 09:00 UTC = 10:00 in Berlin
    assert "2026-11-24 10:00 → 2026-11-24 12:00" in result.stdout
    env = cli("book", "node-a", "--start", "tomorrow 09:00", "-d", "1h",
              env={"PROCPLAN_TZ": "America/New_York"})  # fmt: skip
    assert env.exit_code == 0, env.output
    assert fake_server.requests[1].json()["start"].endswith("T14:00:00+00:00")  # 09:00 EST
    bad = cli("--tz", "Mars/Base", "bookings")
    assert bad.exit_code == 2
    assert "unknown time zone 'Mars/Base'" in flat(bad.output)
    fake_server.add("GET", "/api/v1/bookings", 200, {"bookings": [], "total": 0})
    env_bad = cli("bookings", "--all", env={"PROCPLAN_TZ": "Mars/Base"})  # warned, not fatal
    assert env_bad.exit_code == 0, env_bad.output
    assert "unknown time zone 'Mars/Base'" in env_bad.stderr


def test_shell_completion_is_available(monkeypatch):
    # name the shell rather than let Typer detect the one running the tests
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = CliRunner().invoke(app, ["--show-completion", "bash"])
    assert result.exit_code == 0, result.output
    assert "complete" in result.stdout and "_PROCPLAN_COMPLETE" in result.stdout
