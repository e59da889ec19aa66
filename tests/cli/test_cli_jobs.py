"""Job client methods and ``procplan submit/queue/job/cancel`` against a canned server."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from procplan.cli import jobview
from procplan.client import Job, ProcPlanClient, parse_job
from procplan.client.answers import parse_job_page, parse_lease, parse_submitted

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def make_job(**fields: Any) -> dict[str, Any]:
    """A pending job as the server renders it (ADR 0005), overridable field by field."""
    job: dict[str, Any] = {
        "id": "42",
        "job_id": "42",
        "name": "train.py",
        "user": "alice",
        "tenant_id": "vision",
        "kind": "batch",
        "state": "pending",
        "priority": 100,
        "gpu_count": 2,
        "nodes": 1,
        "gpu_type": None,
        "gpu_memory_mb": None,
        "time_limit_s": 5400,
        "node_id": None,
        "booking_id": None,
        "submitted_at": iso(NOW - timedelta(minutes=5, seconds=30)),
        "started_at": None,
        "completed_at": None,
        "node_name": None,
        "node_ids": [],
        "allocated_gpus": None,
        "gpu_indices": [],
        "reason": "Resources",
        "reason_text": "waiting for GPUs to free up",
        "queue_position": 3,
        "estimated_start": iso(NOW + timedelta(minutes=12, seconds=30)),
        "borrowed": False,
        "preempt_at": None,
        "exit_code": None,
        "command": ["python", "train.py", "--lr", "3e-4"],
        "workdir": "/home/alice/proj",
        "array_id": None,
        "array_index": None,
        "pid": None,
        "host": None,
        "message": "",
        "version": 7,
    }
    job.update(fields)
    return job


def typed_job(**fields: Any) -> Job:
    """``make_job`` as the client hands it to the renderers."""
    return parse_job(make_job(**fields))


RUNNING = {
    "state": "running",
    "started_at": iso(NOW - timedelta(hours=1, minutes=5)),
    "node_name": "Node A",
    "node_ids": ["node-a"],
    "allocated_gpus": ["node-a-gpu2", "node-a-gpu3"],
    "gpu_indices": [2, 3],
    "reason": None,
    "reason_text": None,
    "queue_position": 0,
    "estimated_start": None,
}


# -- client --------------------------------------------------------------------------------


def test_job_methods_hit_their_routes(fake_server):
    routes = [
        ("POST", "/api/v1/jobs"),
        ("GET", "/api/v1/jobs"),
        ("GET", "/api/v1/jobs/42"),
        ("GET", "/api/v1/jobs/42/wait"),
        ("POST", "/api/v1/jobs/42/heartbeat"),
        ("POST", "/api/v1/jobs/42/release"),
        ("DELETE", "/api/v1/jobs/42"),
        ("GET", "/api/v1/cluster/status"),
    ]
    for method, path in routes:
        fake_server.add(method, path, 200, {"ok": path})
    fake_server.add("POST", "/api/v1/jobs", 201, {"job_id": "42", "job": make_job()})
    fake_server.add("GET", "/api/v1/jobs", 200, {"jobs": [make_job()], "total": 9})
    fake_server.add("GET", "/api/v1/jobs/42", 200, make_job(**RUNNING))
    fake_server.add("DELETE", "/api/v1/jobs/42", 200, {"message": "ok", "job": make_job()})
    with ProcPlanClient(fake_server.url, act_as="alice") as client:
        assert client.jobs.submit({"command": ["true"]}).job == typed_job()
        page = client.jobs.list(user="alice", state="active", tenant_id=None, limit=5)
        assert (page.jobs, page.total, page.raw) == ((typed_job(),), 9, [make_job()])
        assert client.jobs.get(42).node_ids == ("node-a",)
        assert client.jobs.wait("42", 7, 0.5).id == "?"  # not a job: read as absent
        assert client.jobs.heartbeat(42).state is None
        client.jobs.release(42, 3)
        cancelled = client.jobs.cancel("42")
        assert cancelled is not None and cancelled.id == "42"
        assert client.nodes.cluster_status() == {"ok": "/api/v1/cluster/status"}
    assert [(r.method, r.path) for r in fake_server.requests] == routes
    assert fake_server.requests[0].json() == {"command": ["true"]}
    assert fake_server.requests[1].query == {"user": ["alice"], "state": ["active"], "limit": ["5"]}
    assert fake_server.requests[3].query == {"timeout": ["0.5"], "version": ["7"]}
    assert fake_server.requests[5].json() == {"exit_code": 3}


def test_wait_without_version_sends_only_the_timeout(fake_server):
    fake_server.add("GET", "/api/v1/jobs/9/wait", 200, {"id": "9"})
    with ProcPlanClient(fake_server.url) as client:
        client.jobs.wait(9, None, 1)
    assert fake_server.requests[0].query == {"timeout": ["1"]}


def test_tenant_methods_hit_their_routes(fake_server):
    routes = [
        ("GET", "/api/v1/tenants"),
        ("GET", "/api/v1/tenants/vision"),
        ("POST", "/api/v1/tenants"),
        ("PATCH", "/api/v1/tenants/vision"),
        ("PUT", "/api/v1/tenants/vision/members/bob%20smith"),
        ("DELETE", "/api/v1/tenants/vision/members/carol"),
    ]
    for method, path in routes:
        fake_server.add(method, path, 200, {})
    with ProcPlanClient(fake_server.url) as client:
        client.tenants.list()
        client.tenants.get("vision")
        client.tenants.create({"name": "vision"})
        client.tenants.update("vision", {"max_gpus": None})
        client.tenants.add_member("vision", "bob smith")
        client.tenants.remove_member("vision", "carol")
    assert [r.method for r in fake_server.requests] == [m for m, _ in routes]
    assert fake_server.requests[3].json() == {"max_gpus": None}
    assert fake_server.requests[4].path == "/api/v1/tenants/vision/members/bob%20smith"


# -- submit --------------------------------------------------------------------------------

SUBMITTED = {"job_id": "42", "status": "submitted", "message": "Job submitted successfully"}


def test_submit_sends_a_batch_job(cli, fake_server, tmp_path):
    fake_server.add("POST", "/api/v1/jobs", 201, {**SUBMITTED, "job": make_job()})
    result = cli(
        "submit", "-n", "2", "--gpu-type", "A100", "--gpu-mem", "40000", "--time", "1h30m",
        "--priority", "high", "--tenant", "vision", "--booking", "7", "--node", "node-a",
        "--workdir", str(tmp_path), "--env", "A=1", "-e", "B=x=y", "--output", "out.log",
        "--error", "err.log", "--name", "exp1", "--", "python", "train.py", "--lr", "3e-4",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "Submitted job 42\n"
    assert fake_server.requests[0].json() == {
        "kind": "batch",
        "name": "exp1",
        "command": ["python", "train.py", "--lr", "3e-4"],
        "gpu_count": 2,
        "nodes": 1,
        "gpu_type": "A100",
        "gpu_memory_mb": 40000,
        "time_limit_s": 5400,
        "priority": 500,
        "tenant_id": "vision",
        "booking_id": 7,
        "node_id": "node-a",
        "workdir": str(tmp_path.resolve()),
        "env": {"A": "1", "B": "x=y"},
        "stdout": "out.log",
        "stderr": "err.log",
    }
    assert "X-ProcPlan-User" not in fake_server.requests[0].headers


def test_submit_defaults_and_command_options_without_dashes(cli, fake_server):
    fake_server.add("POST", "/api/v1/jobs", 201, {**SUBMITTED, "job": make_job()})
    result = cli("submit", "-n", "0", "./bin/train.sh", "--gpus", "9", "-n", "3")
    assert result.exit_code == 0, result.output
    body = fake_server.requests[0].json()
    assert body["command"] == ["./bin/train.sh", "--gpus", "9", "-n", "3"]
    assert (body["gpu_count"], body["name"], body["workdir"]) == (0, "train.sh", os.getcwd())
    assert "priority" not in body and "env" not in body and "time_limit_s" not in body


def test_submit_export_env_is_overridden_by_env(cli, fake_server):
    fake_server.add("POST", "/api/v1/jobs", 201, SUBMITTED)
    result = cli(
        "submit", "--export-env", "--env", "PP_X=mine", "--", "true",
        env={"PP_X": "shell", "PP_Y": "kept"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    env = fake_server.requests[0].json()["env"]
    assert (env["PP_X"], env["PP_Y"]) == ("mine", "kept")


def test_submit_array_and_parsable(cli, fake_server):
    answer = {**SUBMITTED, "job_ids": ["42", "43", "44"], "array_id": "42"}
    fake_server.add("POST", "/api/v1/jobs", 201, answer)
    result = cli("submit", "--array", "0-2", "--", "echo", "hi")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Submitted array 42 (3 tasks: 42–44)\n"
    assert fake_server.requests[0].json()["array"] == "0-2"
    assert cli("submit", "--array", "0-2", "--parsable", "--", "echo").stdout == "42\n"
    fake_server.add("POST", "/api/v1/jobs", 201, SUBMITTED)
    assert cli("submit", "--parsable", "true").stdout == "42\n"


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "--time", "soon", "--", "true"],
        ["submit", "--priority", "very", "--", "true"],
        ["submit", "--env", "NOEQUALS", "--", "true"],
        ["submit", "-n", "-1", "--", "true"],
        ["submit"],
        ["queue", "--me", "--user", "bob"],
        ["queue", "--all", "--state", "failed"],
        ["cancel", "--booking", "x7"],
        ["cancel"],
    ],
)
def test_bad_arguments_are_usage_errors(cli, fake_server, args):
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert fake_server.requests == []


def test_submit_refusal_shows_the_server_message(cli, fake_server):
    error = {"error": "quota exceeded for tenant vision: gpus requested=9, quota=8, current=0"}
    fake_server.add("POST", "/api/v1/jobs", 403, {**error, "status": 403})
    result = cli("submit", "-n", "9", "--", "true")
    assert result.exit_code == 1
    assert result.stderr == f"error: {error['error']}\n"


def test_submit_unreachable_exits_2(cli, dead_url):
    result = cli("submit", "--url", dead_url, "--", "true")
    assert result.exit_code == 2
    assert result.stderr.startswith("cannot reach ProcPlan server")


# -- queue and job ---------------------------------------------------------------------------


def test_queue_defaults_to_everyones_active_jobs(cli, fake_server):
    now = datetime.now(tz=UTC)
    pending = make_job(
        submitted_at=iso(now - timedelta(minutes=5, seconds=30)),
        estimated_start=iso(now + timedelta(minutes=12, seconds=30)),
    )
    running = make_job(
        id="41",
        user="bob",
        name="[bold]x[/]",
        **{**RUNNING, "started_at": iso(now - timedelta(hours=1, minutes=5, seconds=5))},
    )
    fake_server.add("GET", "/api/v1/jobs", 200, {"jobs": [pending, running], "total": 2})
    result = cli("queue")
    assert result.exit_code == 0, result.output
    assert fake_server.requests[0].query == {"state": ["active"], "limit": ["200"]}
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "REASON" in line)
    for column in jobview.QUEUE_COLUMNS:
        assert column in header
    row42 = next(line for line in lines if " 42 " in line)
    for text in ("alice", "vision", "pending", "Resources", " min", "5m", "train.py"):
        assert text in row42
    assert "in 12 min" in row42 or "in 13 min" in row42  # 12 min 30 s from a moving clock
    row41 = next(line for line in lines if " 41 " in line)
    for text in ("bob", "running", "node-a", "1h05m", "[bold]x[/]"):
        assert text in row41


def test_queue_filters(cli, fake_server):
    fake_server.add("GET", "/api/v1/me", 200, {"user": "alice", "via": "peer"})
    fake_server.add("GET", "/api/v1/jobs", 200, {"jobs": [], "total": 0})
    assert cli("queue", "--me", "--tenant", "vision").stdout == "No jobs.\n"
    assert cli("queue", "--all", "--user", "bob", "--limit", "5").exit_code == 0
    assert cli("queue", "--state", "pending,failed").exit_code == 0
    queries = [r.query for r in fake_server.calls("GET", "/api/v1/jobs")]
    assert queries == [
        {"user": ["alice"], "tenant_id": ["vision"], "state": ["active"], "limit": ["200"]},
        {"user": ["bob"], "limit": ["5"]},
        {"state": ["pending,failed"], "limit": ["200"]},
    ]


def test_queue_json_prints_the_raw_list(cli, fake_server):
    jobs = [make_job(), make_job(id="43")]
    fake_server.add("GET", "/api/v1/jobs", 200, {"jobs": jobs, "total": 9})
    result = cli("queue", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == jobs


def test_queue_says_when_rows_are_cut(cli, fake_server):
    fake_server.add("GET", "/api/v1/jobs", 200, {"jobs": [make_job()], "total": 300})
    assert "Showing 1 of 300" in cli("queue").stdout


def test_job_shows_details(cli, fake_server):
    fake_server.add("GET", "/api/v1/jobs/42", 200, make_job())
    result = cli("job", "42")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Job: 42"
    for line in (
        "State: pending",
        "Reason: Resources — waiting for GPUs to free up",
        "Position: 3",
        "Command: python train.py --lr 3e-4",
        "Time limit: 1h30m",
    ):
        assert line in lines
    assert any(line.startswith("Estimated start: 2026-11-24 12:12 UTC") for line in lines)
    assert cli("job", "42", "--json").stdout.startswith("{")


def test_job_unknown_exits_1(cli, fake_server):
    result = cli("job", "99")
    assert result.exit_code == 1
    assert result.stderr == "error: no such route\n"


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_jobs_reports_each_and_exits_1_on_any_failure(cli, fake_server):
    fake_server.add("DELETE", "/api/v1/jobs/42", 200, {"message": "ok", "job": make_job()})
    fake_server.add("DELETE", "/api/v1/jobs/43", 200, {"message": "Job cancelled successfully"})
    fake_server.add(
        "DELETE", "/api/v1/jobs/44", 409, {"error": "job 44 is already completed", "status": 409}
    )
    result = cli("cancel", "42", "44", "43")
    assert result.exit_code == 1
    assert result.stdout == "Cancelled job 42\nCancelled job 43\n"
    assert result.stderr == "error: job 44: job 44 is already completed\n"
    assert [r.path for r in fake_server.requests] == [
        "/api/v1/jobs/42",
        "/api/v1/jobs/44",
        "/api/v1/jobs/43",
    ]


def test_cancel_all_ok_exits_0(cli, fake_server):
    fake_server.add("DELETE", "/api/v1/jobs/42", 200, {"message": "ok"})
    result = cli("cancel", "42")
    assert (result.exit_code, result.stdout) == (0, "Cancelled job 42\n")


def test_cancel_unreachable_exits_2(cli, dead_url):
    result = cli("cancel", "42", "--url", dead_url)
    assert result.exit_code == 2


# -- rendering (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45.9, "45s"), (60, "1m"), (719, "11m"), (3900, "1h05m"), (183600, "2d03h")],
)
def test_human_span(seconds, text):
    assert jobview.human_span(seconds) == text


def test_relative_times():
    assert jobview.relative(iso(NOW + timedelta(minutes=12)), NOW) == "in 12 min"
    assert jobview.relative(iso(NOW - timedelta(hours=2)), NOW) == "2 h ago"
    assert jobview.relative(iso(NOW + timedelta(seconds=10)), NOW) == "in 10 s"
    assert jobview.relative(iso(NOW), NOW) == "now"
    assert jobview.relative(None, NOW) == "—"
    assert jobview.relative("garbage", NOW) == "—"


def test_elapsed_and_eta_by_state():
    pending = typed_job()
    running = typed_job(**RUNNING)
    done = typed_job(**{**RUNNING, "state": "completed", "completed_at": iso(NOW)})
    assert (jobview.elapsed(pending, NOW), jobview.eta(pending, NOW)) == ("5m", "in 13 min")
    assert (jobview.elapsed(running, NOW), jobview.eta(running, NOW)) == ("1h05m", "")
    assert jobview.elapsed(done, NOW) == "1h05m"
    assert jobview.eta(typed_job(estimated_start=None), NOW) == "—"


def test_status_line():
    assert jobview.status_line(typed_job(), NOW) == (
        "job 42 pending · position 3 · waiting for GPUs to free up · "
        "estimated start in 13 min (2026-11-24 12:12 UTC)"
    )
    bare = typed_job(queue_position=0, estimated_start=None, reason="Held", reason_text=None)
    assert jobview.status_line(bare, NOW) == "job 42 pending · Held"
    assert jobview.status_line(typed_job(**RUNNING), NOW) == "job 42 running on node-a (GPUs 2,3)"
    assert jobview.status_line(typed_job(state="cancelled"), NOW) == "job 42 cancelled"


def test_what_a_pending_job_waits_for_is_shown():
    waits = {"waits_for": {"jobs": ["17", "18"], "bookings": [5]}}
    assert jobview.status_line(typed_job(**waits), NOW) == (
        "job 42 pending · position 3 · waiting for GPUs to free up · "
        "in the way: job 17, job 18, booking 5 · estimated start in 13 min (2026-11-24 12:12 UTC)"
    )
    assert "Waiting for: job 17, job 18, booking 5" in jobview.detail_lines(typed_job(**waits), NOW)
    assert not any(
        line.startswith("Waiting for") for line in jobview.detail_lines(typed_job(), NOW)
    )


def test_detail_lines_of_a_running_job():
    job = typed_job(**RUNNING, borrowed=True, time_limit_s=None, pid=99, host="ws1")
    lines = jobview.detail_lines(job, NOW)
    assert "Allocation: node-a: node-a-gpu2, node-a-gpu3 (indices 2,3)" in lines
    assert "Time limit: none (open-ended)" in lines
    assert "Borrowed: yes" in lines
    assert "Client: pid 99 on ws1" in lines
    assert not any(line.startswith(("Reason", "Position", "Estimated")) for line in lines)


def test_release_booking_on_exit_asks_the_server_and_needs_a_booking(cli, fake_server):
    fake_server.add("POST", "/api/v1/jobs", 201, {**SUBMITTED, "job": make_job()})
    result = cli("submit", "--booking", "7", "--release-booking-on-exit", "--", "eval.py")
    assert result.exit_code == 0, result.output
    body = fake_server.requests[0].json()
    assert (body["booking_id"], body["release_booking"]) == (7, True)
    alone = cli("submit", "--release-booking-on-exit", "--", "eval.py")
    assert alone.exit_code == 2 and "needs" in alone.output and "--booking" in alone.output


# -- typed answers (parsed once, in the client) ----------------------------------------------


def test_parse_job_reads_the_wire_object_once():
    job = typed_job(**RUNNING)
    assert (job.id, job.state, job.user, job.gpu_count) == ("42", "running", "alice", 2)
    assert job.started_at == NOW - timedelta(hours=1, minutes=5)
    assert (job.node_ids, job.allocated_gpus) == (("node-a",), ("node-a-gpu2", "node-a-gpu3"))
    assert (job.gpu_indices, job.command[0], job.version) == ((2, 3), "python", 7)
    assert job.raw == make_job(**RUNNING)
    assert parse_job({"job": make_job(), "message": "ok"}) == typed_job()  # release, cancel


def test_parse_job_reads_odd_values_as_absent():
    odd = parse_job({"job_id": 7, "state": None, "gpu_count": True, "started_at": "soon",
                     "submitted_at": "2026-11-24T12:00:00", "gpu_indices": [1, "x", None],
                     "node_ids": None, "queue_position": "3"})  # fmt: skip
    assert (odd.id, odd.state, odd.gpu_count, odd.started_at) == ("7", "", None, None)
    assert (odd.submitted_at, odd.gpu_indices, odd.node_ids) == (None, (1,), ())
    assert odd.queue_position == 0
    assert parse_job({}).id == "?"


def test_parse_submitted_and_pages():
    bare = parse_submitted({"job_id": "42"})
    assert bare.job == Job(id="42", state="pending")
    assert parse_submitted({**SUBMITTED, "job": make_job()}).job.version == 7
    array = parse_submitted({**SUBMITTED, "job_ids": ["42", "43"], "array_id": "42"})
    assert (array.job_ids, array.array_id) == (("42", "43"), "42")
    assert parse_job_page({"jobs": [make_job(), "junk"]}).total == 1
    lease = parse_lease({"state": "running", "preempt_at": "2026-11-24T12:10:00+00:00"})
    assert (lease.state, lease.preempt_at) == ("running", NOW + timedelta(minutes=10))
