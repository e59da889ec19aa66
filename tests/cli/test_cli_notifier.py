"""signal_completion and procplan-notify: ProcPlan's exact outputs, never an exception."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from procplan.client import ProcPlanClient
from procplan.notifier import NotifyResult, main, signal_completion

NOT_ACTIVE = {"error": "Booking '42' is not active or does not exist", "status": 404}


def test_success_posts_booking_id(fake_server):
    fake_server.add("POST", "/api/mark_done", 200, {"booking_id": 42, "status": "completed"})
    result = signal_completion(fake_server.url + "/", 42)
    assert result == NotifyResult(ok=True, status=200, message="completed")
    assert fake_server.requests[0].json() == {"booking_id": 42}


def test_refusal_reports_status_and_raw_body(fake_server):
    fake_server.add("POST", "/api/mark_done", 404, NOT_ACTIVE)
    result = signal_completion(fake_server.url, 42)
    assert not result.ok
    assert result.status == 404
    assert "not active or does not exist" in result.message


def test_network_error_is_status_zero_not_an_exception(dead_url):
    result = signal_completion(dead_url, 42, timeout=2.0)
    assert (result.ok, result.status) == (False, 0)
    assert result.message


def test_bad_url_is_reported_not_raised():
    result = signal_completion("not a url", 1, timeout=1.0)
    assert (result.ok, result.status) == (False, 0)


def test_cli_success_line(fake_server, capsys):
    fake_server.add("POST", "/api/mark_done", 200, {"booking_id": 42, "status": "completed"})
    assert main(["--url", fake_server.url, "--booking-id", "42"]) == 0
    out = capsys.readouterr()
    assert out.out == "Booking 42 marked complete (status 200).\n"
    assert out.err == ""


def test_cli_failure_line_on_stderr(fake_server, capsys):
    fake_server.add("POST", "/api/mark_done", 404, b'{"error":"nope","status":404}')
    assert main(["--url", fake_server.url, "--booking-id", "42", "--timeout", "2"]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (
        'Failed to mark booking complete (status 404): {"error":"nope","status":404}\n'
    )


def test_cli_network_failure_is_status_zero(dead_url, capsys):
    assert main(["--url", dead_url, "--booking-id", "5", "--timeout", "2"]) == 1
    assert capsys.readouterr().err.startswith("Failed to mark booking complete (status 0): ")


def test_runs_as_a_module(dead_url):
    done = subprocess.run(
        [sys.executable, "-m", "procplan.notifier", "--url", dead_url, "--booking-id", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "(status 0)" in done.stderr


def test_sends_the_token_from_the_environment(fake_server, monkeypatch):
    fake_server.add("POST", "/api/mark_done", 200, {"booking_id": 42, "status": "completed"})
    assert signal_completion(fake_server.url, 42).ok
    monkeypatch.setenv("PROCPLAN_TOKEN", "pp_notify")
    assert signal_completion(fake_server.url, 42).ok
    first, second = fake_server.requests
    assert "Authorization" not in first.headers and "X-ProcPlan-User" not in first.headers
    assert second.headers["Authorization"] == "Bearer pp_notify"


def test_marks_done_over_a_unix_socket(unix_live):
    """On the server's host the kernel says who asks: the server's own user, an admin."""
    with ProcPlanClient(unix_live.url) as client:
        start = datetime.now(tz=UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        made = client.bookings.create("node-a", start, duration_minutes=120, gpu_count=1)
        booking = made["booking"]
        result = signal_completion(unix_live.url, booking["id"])
        assert result.ok, result.message
        assert client.bookings.get(booking["id"])["status"] == "completed"
