"""``procplan report``, ``procplan history`` and the efficiency line of ``procplan job``
against a canned server whose answers are built by ``wire.usage`` (the real shapes)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from tests.cli.test_cli_jobs import RUNNING, make_job
from typer.testing import CliRunner

from procplan.cli.main import app
from procplan.core.usage import By, Efficiency, FinishedJob, Hold, Totals
from procplan.wire.usage import booking_usage_json, finished_jobs_json, job_usage_json, report_json

H = 3600
T0 = 1_795_428_000  # 2026-11-23T10:00:00Z


@pytest.fixture
def cli(fake_server):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env={"PROCPLAN_URL": fake_server.url})

    return invoke


def report_body() -> dict[str, Any]:
    rows = {
        "(unattributed)": Totals(unbooked_s=H // 2),
        "alice": Totals(booked_s=4 * H, used_s=2 * H, job_s=H, jobs=1, wait_s=90),
    }
    total = Totals(booked_s=4 * H, used_s=2 * H, job_s=H, unbooked_s=H // 2, jobs=1, wait_s=90)
    return report_json(By.USER, T0, T0 + 4 * H, T0 + 4 * H, 5.0, rows, total)


def test_report_table_sends_the_window_and_shows_rows(cli, fake_server):
    fake_server.add("GET", "/api/v1/usage/report", 200, report_body())
    result = cli("report", "--by", "user", "--start", "2026-11-23T10:00", "--end", "now")
    assert result.exit_code == 0, result.output
    query = fake_server.requests[0].query
    assert query["by"] == ["user"] and query["start"] == ["2026-11-23T10:00:00+00:00"]
    assert "end" in query
    text = result.stdout
    for needle in ("alice", "4.00", "2.00", "50%", "(unattributed)", "0.50", "TOTAL", "1m"):
        assert needle in text, text


def test_report_csv_and_json(cli, fake_server):
    fake_server.add("GET", "/api/v1/usage/report", 200, report_body())
    rows = list(csv.DictReader(io.StringIO(cli("report", "--format", "csv").stdout)))
    assert [r["user"] for r in rows] == ["(unattributed)", "alice", "TOTAL"]
    assert rows[1]["booked_gpu_hours"] == "4.0" and rows[1]["idle_fraction"] == "0.5"
    assert json.loads(cli("report", "-o", "json").stdout)["by"] == "user"
    assert json.loads(cli("report", "--json").stdout)["by"] == "user"  # issue #17
    assert cli("report", "--json", "--format", "csv").exit_code == 2


def test_report_bad_time_and_grouping_are_usage_errors(cli, fake_server):
    assert cli("report", "--start", "last tuesday").exit_code == 2
    assert cli("report", "--by", "planet").exit_code == 2
    assert fake_server.requests == []


def test_report_refusal_shows_the_server_message(cli, fake_server):
    body = {"error": "end must be after start", "status": 400, "code": "bad_window"}
    fake_server.add("GET", "/api/v1/usage/report", 400, body)
    result = cli("report", "--start", "2026-11-23T10:00", "--end", "2026-11-23T10:00")
    assert result.exit_code == 1
    assert "end must be after start" in result.stderr


FINISHED = FinishedJob(
    id=42, name="train.py", user="alice", tenant="vision", kind="batch", state="completed",
    gpu_count=2, nodes=("node-a",), submitted=T0, started=T0 + 120, ended=T0 + 120 + 2 * H,
    exit_code=0, gpu_s=4 * H,
)  # fmt: skip


def test_history_filters_and_table(cli, fake_server):
    fake_server.add("GET", "/api/v1/usage/jobs", 200, finished_jobs_json([FINISHED]))
    result = cli("history", "--user", "alice", "--state", "completed", "--state", "failed",
                 "--limit", "5")  # fmt: skip
    assert result.exit_code == 0, result.output
    query = fake_server.requests[0].query
    assert query == {"user": ["alice"], "state": ["completed,failed"], "limit": ["5"]}
    for needle in ("42", "train.py", "completed", "node-a", "2m", "2h00m", "4.00"):
        assert needle in result.stdout


def test_history_csv_json_and_empty(cli, fake_server):
    fake_server.add("GET", "/api/v1/usage/jobs", 200, finished_jobs_json([FINISHED]))
    (row,) = csv.DictReader(io.StringIO(cli("history", "-o", "csv").stdout))
    assert (row["id"], row["nodes"], row["wall_s"], row["gpu_hours"]) == ("42", "node-a",
                                                                         "7200", "4.0")  # fmt: skip
    assert json.loads(cli("history", "-o", "json").stdout)[0]["id"] == "42"
    fake_server.add("GET", "/api/v1/usage/jobs", 200, finished_jobs_json([]))
    assert cli("history").stdout == "No finished jobs in that period.\n"


def test_job_shows_an_efficiency_line_once_it_ran(cli, fake_server):
    fake_server.add("GET", "/api/v1/jobs/42", 200, make_job(**RUNNING))
    eff = Efficiency(gpu_s=2 * H, wall_s=H, util_mean=61.4, util_peak=99.0,
                     mem_mean_mb=10240.0, mem_peak_mb=20480.0, samples=60)  # fmt: skip
    claims = [Hold("node-a-gpu2", "node-a", T0, T0 + H, "alice", "vision", job=42)]
    fake_server.add("GET", "/api/v1/jobs/42/usage", 200, job_usage_json(42, claims, eff, 5.0))
    lines = cli("job", "42").stdout.splitlines()
    assert lines[-1] == (
        "Efficiency: 2.00 GPU-h over 1h00m wall; GPU util mean 61%, peak 99%; "
        "memory mean 10.0 GiB, peak 20.0 GiB"
    )


def test_job_without_usage_route_or_start_has_no_efficiency_line(cli, fake_server):
    fake_server.add("GET", "/api/v1/jobs/42", 200, make_job(**RUNNING))  # usage route: 404
    assert not any(x.startswith("Efficiency") for x in cli("job", "42").stdout.splitlines())
    fake_server.add("GET", "/api/v1/jobs/7", 200, make_job(id="7", job_id="7"))  # pending
    assert cli("job", "7").exit_code == 0
    assert not any(r.path.endswith("/usage") for r in fake_server.requests[-1:])


def test_report_of_one_booking(cli, fake_server):
    body = booking_usage_json(42, T0, T0 + 4 * H, T0 + 4 * H, 8 * H, 3 * H, 5.0)
    fake_server.add("GET", "/api/v1/bookings/42/usage", 200, body)
    result = cli("report", "--booking", "42")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Booking 42: 8.00 GPU-h booked until 2026-11-23 14:00 UTC, 3.00 used, 5.00 idle (62%)\n"
    )
    assert json.loads(cli("report", "--booking", "42", "-o", "json").stdout)["used_s"] == 3 * H
