"""The command-line tools against a real ``procplan server --demo`` (the ``live_server`` fixture).

Demo topology: node-a (4× A100, node-a-gpu0..3) and node-b (8× H100, node-b-gpu0..7). The
server is shared by the module, so each test books GPUs no other test touches.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import httpx
from typer.testing import CliRunner

from procplan.cli import compat_cli
from procplan.cli.main import app
from procplan.client import ProcPlanClient
from procplan.notifier import signal_completion

runner = CliRunner()


def tomorrow_at(hour: int) -> datetime:
    today = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1, hours=hour)


def procplan(url: str, *args: str):
    return runner.invoke(app, [*args, "--url", url])


def booked_id(output: str) -> int:
    match = re.search(r"Booked #(\d+) ", output)
    assert match, output
    return int(match.group(1))


def test_nodes_shows_the_demo_nodes_live(live_server):
    """``--demo`` runs an agent per demo node on simulated GPUs: all of them report.

    A node is online from its registration; its first sample follows in the next heartbeat,
    so the loop waits for every expected text, not just the online count."""
    expected = ("node-a", "[3] A100", "node-b", "[7] H100", "3 nodes (3 online)", "30°C")
    deadline = time.monotonic() + 30
    while True:
        result = procplan(live_server, "nodes")
        assert result.exit_code == 0, result.output
        missing = [text for text in expected if text not in result.stdout]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not missing, result.stdout


def test_book_shows_in_both_calendars_then_conflicts(live_server, capsys):
    start = tomorrow_at(10)
    day = start.date().isoformat()
    result = procplan(
        live_server, "book", "node-b", "--gpu", "node-b-gpu6", "--start", start.isoformat(),
        "--duration", "2h", "--priority", "high", "--label", "E2E",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    booked_id(result.stdout)

    assert compat_cli.main(["--url", live_server, "--node", "node-b", "--date", day]) == 0
    table = capsys.readouterr().out
    assert "node-b-gpu6 (H100) | E2E (High)" in table
    assert "node-b-gpu5 (H100) | -" in table
    next_day = (start + timedelta(days=1)).date().isoformat()
    assert table.splitlines()[1] == f"Window: {day}T00:00:00+00:00 – {next_day}T00:00:00+00:00"

    calendar = procplan(live_server, "calendar", "--node", "node-b", "--date", day)
    assert (calendar.exit_code, calendar.stdout) == (0, table)

    clash = procplan(
        live_server, "book", "node-b", "--gpu", "node-b-gpu6",
        "--start", (start + timedelta(hours=1)).isoformat(), "--duration", "30m",
    )  # fmt: skip
    assert clash.exit_code == 1
    assert clash.stderr.startswith("error: ")
    assert "node-b-gpu6" in clash.stderr


def test_mine_extend_and_cancel(live_server):
    start = tomorrow_at(14)
    result = procplan(
        live_server, "book", "node-b", "--gpu", "node-b-gpu7", "--start", start.isoformat(),
        "--end", (start + timedelta(hours=1)).isoformat(), "--label", "MINE",
    )  # fmt: skip
    booking_id = booked_id(result.stdout)

    listing = procplan(live_server, "bookings", "--status", "active")
    assert listing.exit_code == 0, listing.output
    assert "MINE" in listing.stdout

    extended = procplan(live_server, "extend", str(booking_id), "--by", "90m")
    assert extended.exit_code == 0, extended.output
    with ProcPlanClient(live_server) as client:
        end = datetime.fromisoformat(client.bookings.get(booking_id)["end"])
    assert end == start + timedelta(hours=2, minutes=30)

    cancelled = procplan(live_server, "cancel", "--booking", str(booking_id))
    assert cancelled.exit_code == 0, cancelled.output
    assert "cancelled" in cancelled.stdout
    again = procplan(live_server, "cancel", "--booking", str(booking_id))
    assert again.exit_code == 1


def test_notifier_marks_a_running_booking_done(live_server, capsys):
    now_hour = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    with ProcPlanClient(live_server) as client:
        made = client.compat.book(
            "node-a", now_hour, now_hour + timedelta(hours=2), "NT", gpu_ids=["node-a-gpu3"]
        )
    result = signal_completion(live_server, made["booking_id"])
    assert (result.ok, result.status) == (True, 200)
    second = signal_completion(live_server, made["booking_id"])
    assert (second.ok, second.status) == (False, 404)
    assert "is not active or does not exist" in second.message


def test_procplan_cli_unknown_node(live_server, capsys):
    assert compat_cli.main(["--url", live_server, "--node", "nope"]) == 1
    assert capsys.readouterr().err == (
        "No matching nodes found for filter(s): nope. Use --all to list every node.\n"
    )


def test_book_dry_run_then_book_over_another_users_job(live_server):
    """Ledger rule 4 from the command line: ``--dry-run`` shows the GPUs and the open-ended
    job of bob's the booking would preempt, and books nothing; booking then warns again."""
    made = httpx.post(
        f"{live_server}/api/v1/jobs",
        json={"kind": "interactive", "node_id": "node-a", "gpu_count": 1, "command": ["x"]},
        headers={"X-ProcPlan-User": "bob"},
    )
    assert made.status_code == 201, made.text
    job_id = made.json()["job_id"]
    with ProcPlanClient(live_server) as client:
        deadline = time.monotonic() + 20
        while (job := client.jobs.get(job_id)).state != "running":
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        [held] = job.allocated_gpus
        try:
            window = ["--start", tomorrow_at(14).isoformat(), "--duration", "1h"]
            dry = procplan(live_server, "book", "node-a", "--gpu", held, *window, "--dry-run")
            assert dry.exit_code == 0, dry.output
            assert dry.stdout.startswith(f"Would book node-a [{held}] ")
            assert "nothing booked" in dry.stdout
            warning = f"warning: open-ended job {job_id} of bob holds on {held}: SIGTERM at"
            assert dry.stderr.startswith(warning), dry.stderr
            booked = procplan(live_server, "book", "node-a", "--gpu", held, *window)
            assert booked.exit_code == 0, booked.output
            assert booked.stderr.startswith(warning), booked.stderr
            client.bookings.cancel(booked_id(booked.stdout))
        finally:
            client.jobs.cancel(job_id)
