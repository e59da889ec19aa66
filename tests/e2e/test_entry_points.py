"""The installed console scripts, run as separate processes against a real server.

The in-process CLI tests cover behaviour in depth; these prove the entry points in
``pyproject.toml`` are wired and behave like ProcPlan's own: ``procplan``, ``procplan-cli``,
``procplan-notify``, ``python -m procplan.notifier`` and ``python -m procplan.server``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def script(name: str) -> str:
    found = shutil.which(name, path=str(BIN))
    if found is None:
        pytest.fail(f"console script {name} is not installed (pip install -e .)")
    return found


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_book_calendar_and_notify_through_the_installed_scripts(live_server: str) -> None:
    day = (datetime.now(tz=UTC) + timedelta(days=2)).date()
    start = f"{day.isoformat()}T08:00:00+00:00"
    booked = run(
        script("procplan"), "book", "node-a", "--gpu", "node-a-gpu2", "--start", start,
        "--duration", "3h", "--priority", "low", "--label", "EP", "--url", live_server,
    )  # fmt: skip
    assert booked.returncode == 0, booked.stderr
    booking_id = int(re.search(r"#(\d+)", booked.stdout).group(1))  # type: ignore[union-attr]

    table = run(script("procplan-cli"), "--url", live_server, "--node", "node-a",
                "--date", day.isoformat())  # fmt: skip
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "Node Demo Node A (node-a)"
    assert any(line.startswith("node-a-gpu2 (A100) | EP (Low)") for line in lines), table.stdout

    ours = run(script("procplan"), "calendar", "--node", "node-a", "--date", day.isoformat(),
               "--url", live_server)  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    assert "EP (Low)" in ours.stdout

    done = run(script("procplan-notify"), "--url", live_server, "--booking-id", str(booking_id))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Booking {booking_id} marked complete (status 200)."

    again = run(sys.executable, "-m", "procplan.notifier", "--url", live_server,
                "--booking-id", str(booking_id))  # fmt: skip
    assert again.returncode == 1
    assert again.stderr.startswith("Failed to mark booking complete (status 404): ")


def test_unreachable_server_is_one_line_and_a_non_zero_exit() -> None:
    dead = "http://127.0.0.1:9"
    ours = run(script("procplan"), "nodes", "--url", dead)
    assert ours.returncode == 2
    assert ours.stderr.strip().startswith(f"cannot reach ProcPlan server at {dead}")
    assert len(ours.stderr.strip().splitlines()) == 1
    compat = run(script("procplan-cli"), "--url", dead, "--all")
    assert compat.returncode == 1
    notify = run(script("procplan-notify"), "--url", dead, "--booking-id", "1")
    assert notify.returncode == 1
    assert "(status 0)" in notify.stderr


def test_python_m_procplan_server_takes_procplans_flags() -> None:
    result = run(sys.executable, "-m", "procplan.server", "--help")
    assert result.returncode == 0, result.stderr
    for flag in ("--config", "--database", "--web-root", "--host", "--port"):
        assert flag in result.stdout
