"""Output hygiene: server text typed by a hostile lab member never drives the terminal.

Every command that prints server data is run against a canned server whose strings hold ANSI
escape sequences (OSC title change, screen clear, colours), BEL and other C0/C1 controls, bidi
overrides and Rich markup. The output must show them as visible escapes (``\\x1b``) or literal
text, never as the characters themselves, and tables must cap absurdly long names.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from procplan.cli import compat_cli
from procplan.cli.main import app
from procplan.core.text import BIDI_CONTROLS

TITLE = "\x1b]0;pwned\x07"  # retitles the terminal
CLEAR = "\x1b[2J\x1b[H"  # clears the screen
RED = "\x1b[31m"
C0C1 = "\x01\x08\x7f\x9b6n"  # SOH, backspace, DEL, 8-bit CSI "report cursor position"
BIDI = "\u202etxt.exe\u2066"  # right-to-left override, isolate
MARKUP = "[bold red]x[/]"
LINK = "[link=http://evil]y[/link]"

SHOWN = {
    TITLE: "\\x1b]0;pwned\\x07",
    CLEAR: "\\x1b[2J\\x1b[H",
    RED: "\\x1b[31m",
    C0C1: "\\x01\\x08\\x7f\\x9b6n",
    BIDI: "\\u202etxt.exe\\u2066",
    MARKUP: MARKUP,
    LINK: LINK,
}
LONG = "a" * 30_000


def assert_inert(text: str) -> None:
    """No control character but newline, no bidi control: nothing a terminal would act on."""
    bad = [
        char for char in text if (ord(char) < 0x20 and char != "\n") or 0x7F <= ord(char) <= 0x9F
    ]
    bad += [char for char in text if char in BIDI_CONTROLS]
    assert not bad, f"raw control characters {bad!r} in {text!r}"


def assert_shows(text: str, *values: str) -> None:
    assert_inert(text)
    for value in values:
        assert SHOWN[value] in text, f"{SHOWN[value]!r} not in {text!r}"


@pytest.fixture
def cli(fake_server):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env={"PROCPLAN_URL": fake_server.url})

    return invoke


def booking(**fields: Any) -> dict[str, Any]:
    value = {
        "id": 7,
        "node_id": CLEAR,
        "gpu_ids": ["node-a-gpu0", RED],
        "start": "2026-11-24T09:00:00+00:00",
        "end": "2026-11-24T11:00:00+00:00",
        "user": TITLE,
        "label": MARKUP,
        "priority": "high",
        "status": "active",
    }
    value.update(fields)
    return value


def job(**fields: Any) -> dict[str, Any]:
    value = {
        "id": "17",
        "name": BIDI,
        "user": TITLE,
        "tenant_id": MARKUP,
        "kind": "batch",
        "state": "pending",
        "gpu_count": 1,
        "gpu_type": None,
        "node_ids": [],
        "node_name": None,
        "reason": C0C1,
        "reason_text": LINK,
        "queue_position": 1,
        "submitted_at": "2026-11-24T09:00:00+00:00",
        "estimated_start": None,
        "command": ["python", CLEAR, RED],
        "workdir": "/home/x",
        "message": TITLE,
    }
    value.update(fields)
    return value


def test_bookings_table(cli, fake_server):
    fake_server.add("GET", "/api/v1/bookings", 200, {"bookings": [booking()], "total": 1})
    result = cli("bookings", "--all")
    assert result.exit_code == 0, result.output
    assert_shows(result.stdout, TITLE, CLEAR, RED, MARKUP)


def test_bookings_table_caps_a_huge_user_name(cli, fake_server):
    fake_server.add("GET", "/api/v1/bookings", 200, {"bookings": [booking(user=LONG)]})
    result = cli("bookings", "--all")
    assert result.exit_code == 0, result.output
    assert_inert(result.stdout)
    assert "…" in result.stdout
    assert result.stdout.count("a") < 200 and len(result.stdout) < 5_000


def test_book_summary_and_warnings(cli, fake_server):
    answer = {"booking": booking(label=LONG), "conflicts_with_jobs": [{"job_id": BIDI}]}
    fake_server.add("POST", "/api/v1/bookings", 201, answer)
    result = cli("book", "node-a", "--duration", "1h")
    assert result.exit_code == 0, result.output
    assert_shows(result.stdout, CLEAR, RED)
    assert_shows(result.stderr, BIDI)


def test_queue_table(cli, fake_server):
    fake_server.add("GET", "/api/v1/jobs", 200, {"jobs": [job()], "total": 1})
    result = cli("queue")
    assert result.exit_code == 0, result.output
    assert_shows(result.stdout, TITLE, MARKUP, BIDI, C0C1)


def test_queue_caps_a_huge_name(cli, fake_server):
    fake_server.add("GET", "/api/v1/jobs", 200, {"jobs": [job(user=LONG, name=LONG)]})
    result = cli("queue")
    assert result.exit_code == 0, result.output
    assert_inert(result.stdout)
    assert result.stdout.count("a") < 300 and len(result.stdout) < 5_000


def test_queue_json_stays_raw_and_inert(cli, fake_server):
    fake_server.add("GET", "/api/v1/jobs", 200, {"jobs": [job()], "total": 1})
    result = cli("queue", "--json")
    assert result.exit_code == 0, result.output
    assert_inert(result.stdout)
    assert "\\u001b]0;pwned\\u0007" in result.stdout  # JSON's own escapes
    assert json.loads(result.stdout)[0]["user"] == TITLE  # the data as the server sent it


def test_job_detail_shows_whole_values_escaped(cli, fake_server):
    fake_server.add("GET", "/api/v1/jobs/17", 200, job(workdir=LONG + RED))
    result = cli("job", "17")
    assert result.exit_code == 0, result.output
    assert_shows(result.stdout, TITLE, BIDI, CLEAR, RED, C0C1)
    assert f"Workdir: {LONG}\\x1b[31m\n" in result.stdout  # detail views do not cut
    assert f"Command: python '{SHOWN[CLEAR]}' '{SHOWN[RED]}'" in result.stdout


def test_server_error_is_one_sanitised_line(cli, fake_server):
    error = {"error": f"no job {TITLE}{CLEAR}\nforged: line {BIDI}", "status": 404}
    fake_server.add("GET", "/api/v1/jobs/17", 404, error)
    result = cli("job", "17")
    assert result.exit_code == 1
    assert_shows(result.stderr, TITLE, CLEAR, BIDI)
    assert result.stderr.count("\n") == 1 and "\\nforged: line" in result.stderr


def test_cancel_error_line(cli, fake_server):
    fake_server.add("DELETE", "/api/v1/jobs/17", 409, {"error": CLEAR + "no", "status": 409})
    result = cli("cancel", "17")
    assert result.exit_code == 1
    assert_shows(result.stderr, CLEAR)


def test_nodes_view(cli, fake_server):
    gpu = {
        "id": "g0",
        "index": 0,
        "model": RED + "H100",
        "memory_total_mb": 81559,
        "utilization_pct": 5.0,
        "flags": [C0C1],
        "holder": {"kind": "booking", "booking_id": 3, "user": TITLE, "label": MARKUP},
        "processes": [{"pid": 9, "user": BIDI, "command": CLEAR, "kind": "unbooked"}],
    }
    node = {"id": LINK, "name": LONG, "state": "online", "hostname": TITLE, "gpus": [gpu]}
    fake_server.add("GET", "/api/v1/nodes", 200, {"nodes": [node], "summary": {"nodes": 1}})
    result = cli("nodes")
    assert result.exit_code == 0, result.output
    assert_shows(result.stdout, RED, C0C1, TITLE, MARKUP, BIDI, CLEAR, LINK)
    assert result.stdout.count("a") < 200  # the node's 30,000-character name is cut


def test_tenants(cli, fake_server):
    tenant = {"name": MARKUP, "members": [TITLE, BIDI], "email": CLEAR}
    fake_server.add("GET", "/api/v1/tenants", 200, {"tenants": [tenant]})
    fake_server.add("GET", "/api/v1/tenants/t", 200, tenant)
    listed = cli("tenant", "list")
    assert listed.exit_code == 0, listed.output
    assert_shows(listed.stdout, MARKUP, TITLE, BIDI)
    shown = cli("tenant", "show", "t")
    assert shown.exit_code == 0, shown.output
    assert_shows(shown.stdout, MARKUP, TITLE, BIDI, CLEAR)


def _hostile_day_payload(make_day_payload, booking_fixture) -> dict[str, Any]:
    cells = {"node-a-gpu0": {0: [booking_fixture(TITLE + MARKUP, "high")]}}
    payload = make_day_payload(cells, days=1)
    payload["node"]["name"] = CLEAR
    payload["grid"]["rows"][1]["gpu"]["kind"] = BIDI
    return payload


def test_calendar(cli, fake_server, make_day_payload, booking):
    payload = _hostile_day_payload(make_day_payload, booking)
    fake_server.add("GET", "/api/nodes", 200, {"nodes": [{"id": "node-a"}]})
    fake_server.add("POST", "/api/availability_bulk", 200, {"availability": [payload]})
    result = cli("calendar", "--all", "--date", "2026-11-23")
    assert result.exit_code == 0, result.output
    assert_shows(result.stdout, TITLE, MARKUP, CLEAR, BIDI)


def test_compat_cli_week_table(fake_server, capsys, make_day_payload, booking):
    payload = _hostile_day_payload(make_day_payload, booking)
    fake_server.add("GET", "/api/nodes", 200, {"nodes": [{"id": "node-a"}]})
    fake_server.add("GET", "/api/availability", 200, payload)
    code = compat_cli.main(["--url", fake_server.url, "--all", "--date", "2026-11-23"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert_shows(out, TITLE, MARKUP, CLEAR, BIDI)
    assert f"{SHOWN[TITLE]}{MARKUP} (High)" in out


def test_compat_cli_caps_a_huge_label(fake_server, capsys, make_day_payload, booking):
    payload = make_day_payload({"node-a-gpu0": {0: [booking(LONG, "low")]}}, days=1)
    fake_server.add("GET", "/api/nodes", 200, {"nodes": [{"id": "node-a"}]})
    fake_server.add("GET", "/api/availability", 200, payload)
    assert compat_cli.main(["--url", fake_server.url, "--all", "--date", "2026-11-23"]) == 0
    out = capsys.readouterr().out
    assert "a" * 63 + "… (Low)" in out and "a" * 64 not in out


def test_compat_cli_error_line(fake_server, capsys):
    fake_server.add("GET", "/api/nodes", 500, {"error": TITLE + CLEAR, "status": 500})
    assert compat_cli.main(["--url", fake_server.url, "--all"]) == 1
    err = capsys.readouterr().err
    assert_shows(err, TITLE, CLEAR)


def test_logs_keep_colours_and_drop_other_escapes(cli, fake_server):
    body = (
        b"\x1b[1;32mok\x1b[0m step 1\r\n"  # colours: kept
        b"\x1b]0;pwned\x07"  # title change: dropped
        b"\x1b[2J\x1b[H"  # clear screen, cursor home: dropped
        b"\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\ "  # hyperlink: text only
        b"bell\x07 \xe2\x80\xaeflip \xc2\x9b6n done\n"  # BEL, bidi, 8-bit CSI: dropped
    )
    fake_server.add("GET", "/api/v1/jobs/17/logs", 200, body)
    result = cli("logs", "17")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == b"\x1b[1;32mok\x1b[0m step 1\r\nlink bell flip  done\n"
