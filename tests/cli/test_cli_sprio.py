"""``procplan sprio`` and ``procplan queue``'s order, against a canned server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from procplan.cli import jobview
from procplan.cli.main import app
from procplan.client import parse_job
from procplan.client.answers import parse_priority_list

ROWS = [
    {"job_id": "12", "position": 1, "user": "bob", "tenant": "light", "priority": 150,
     "age": 2.5, "fairshare": 1000.0, "size": 0.0, "effective": 1152.5},
    {"job_id": "9", "position": 2, "user": "alice\x1b[31m", "tenant": "heavy", "priority": 100,
     "age": 500.0, "fairshare": 125.25, "size": 0.0, "effective": 725.25},
]  # fmt: skip
ANSWER = {"as_of": "2026-11-24T12:00:00+00:00", "jobs": ROWS, "total": 3}


@pytest.fixture
def cli(fake_server):
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args), env={"PROCPLAN_URL": fake_server.url})

    return invoke


def test_parse_tolerates_odd_values() -> None:
    answer = parse_priority_list({"jobs": [{"job_id": 3, "age": "x", "effective": True}, 7]})
    (row,) = answer.rows
    assert (row.job_id, row.age, row.effective, row.position, answer.total) == (
        "3", None, None, 0, 1,
    )  # fmt: skip
    assert parse_priority_list({}).rows == ()


def test_sprio_prints_the_parts_in_queue_order(cli, fake_server) -> None:
    fake_server.add("GET", "/api/v1/queue/priority", 200, ANSWER)
    result = cli("sprio", "--tenant", "heavy", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert fake_server.requests[0].query == {"tenant_id": ["heavy"], "limit": ["2"]}
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "EFFECTIVE" in line)
    for column in jobview.PRIORITY_COLUMNS:
        assert column in header
    first = lines.index(next(line for line in lines if " 12 " in line))
    second = lines.index(next(line for line in lines if " 9 " in line))
    assert first < second
    for text in ("bob", "light", "150", "2.5", "1000.0", "1152.5"):
        assert text in lines[first]
    assert "\x1b" not in result.stdout  # server text is sanitised
    assert "Showing 2 of 3" in result.stdout


def test_sprio_json_and_empty(cli, fake_server) -> None:
    fake_server.add("GET", "/api/v1/queue/priority", 200, ANSWER)
    result = cli("sprio", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == ROWS
    fake_server.add("GET", "/api/v1/queue/priority", 200, {"jobs": [], "total": 0})
    assert cli("sprio").stdout.strip() == "No pending jobs."


def test_sprio_user_and_me_exclude_each_other(cli) -> None:
    assert cli("sprio", "--user", "a", "--me").exit_code == 2


def job(ident: str, state: str, position: int = 0) -> Any:
    return parse_job({"id": ident, "state": state, "queue_position": position})


def test_queue_lists_the_queue_in_order_then_running() -> None:
    jobs = [
        job("30", "running"),
        job("29", "pending", 0),  # not placed yet: after the placed ones
        job("28", "pending", 2),
        job("27", "pending", 1),
        job("26", "running"),
        job("25", "completed"),
        job("24", "pending", 3),
    ]
    order = [j.id for j in jobview.queue_order(jobs)]
    assert order == ["27", "28", "24", "29", "30", "26", "25"]
    table = jobview.queue_table(jobs, datetime(2026, 11, 24, 12, 0, tzinfo=UTC))
    assert [str(c) for c in table.columns[0].cells] == order
