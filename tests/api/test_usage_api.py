"""Usage accounting routes (issue #14): the report, finished jobs, a job's efficiency.

Scenario (demo topology, clock at Monday 2026-11-23 10:00 UTC): alice books node-a-gpu0 for
10:00–14:00 and runs a one-hour job in her booking; the GPU is busy 12:00–13:00 by the history;
node-b-gpu0 is busy 11:00–11:30 with no booking and no job (someone outside the scheduler).
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from procplan.core.timeutil import parse_instant
from procplan.server import Composed
from procplan.store.history_repo import HistoryRow
from procplan.testing import FakeClock

ALICE = {"X-ProcPlan-User": "alice"}
T10 = parse_instant("2026-11-23T10:00:00Z")
H = 3600


def minutes(gpu: str, start: int, count: int, util: float) -> list[HistoryRow]:
    return [
        HistoryRow(gpu, 60, start + 60 * i, 30, (util * 30, 9000.0, 0.0, 0.0), (30, 30, 0, 0),
                   (util, 400.0, None, None))
        for i in range(count)
    ]  # fmt: skip


def build_scenario(client: TestClient, composed: Composed, clock: FakeClock) -> str:
    """The module docstring's scenario; returns the job id. The clock ends at 14:00."""
    booking = client.post(
        "/api/v1/bookings",
        json={
            "node_id": "node-a",
            "gpu_ids": ["node-a-gpu0"],
            "start": "2026-11-23T10:00:00Z",
            "end": "2026-11-23T14:00:00Z",
            "label": "paper",
        },
        headers=ALICE,
    )
    assert booking.status_code == 201, booking.text
    body = {"command": ["python", "t.py"], "kind": "interactive", "gpus": 1,
            "booking_id": booking.json()["booking"]["id"]}  # fmt: skip
    job = client.post("/api/v1/jobs", json=body, headers=ALICE)
    assert job.status_code == 201, job.text
    job_id: str = job.json()["job"]["id"]
    composed.scheduler.run_once()
    clock.advance(H)
    released = client.post(f"/api/v1/jobs/{job_id}/release", json={"exit_code": 0})
    assert released.json()["state"] == "completed", released.text
    history = composed.nodes.history.store  # type: ignore[union-attr]
    history.add(minutes("node-a-gpu0", T10 + 2 * H, 60, 80.0))
    history.add(minutes("node-a-gpu0", T10, 60, 50.0))  # the job's hour
    history.add(minutes("node-b-gpu0", T10 + H, 30, 40.0))
    history.add(minutes("node-b-gpu1", T10 + H, 30, 2.0))  # below the threshold
    clock.set(T10 + 4 * H)
    return job_id


def rows(body: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in body["rows"]}


def test_report_by_user_tenant_and_node(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    build_scenario(client, composed, clock)
    window = {"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T14:00:00Z"}
    by_user = client.get("/api/v1/usage/report", params={"by": "user", **window})
    assert by_user.status_code == 200, by_user.text
    body = by_user.json()
    alice = rows(body, "user")["alice"]
    assert (alice["booked_gpu_hours"], alice["used_gpu_hours"], alice["idle_gpu_hours"]) == (
        4.0, 2.0, 2.0)  # fmt: skip
    assert alice["idle_fraction"] == 0.5 and alice["job_gpu_hours"] == 1.0
    assert alice["jobs"] == 1 and alice["mean_wait_s"] == 0.0
    assert rows(body, "user")["(unattributed)"]["unbooked_gpu_hours"] == 0.5
    assert body["total"]["booked_s"] == 4 * H and body["busy_threshold_pct"] == 5.0
    by_node = rows(client.get("/api/v1/usage/report", params={"by": "node", **window}).json(),
                   "node")  # fmt: skip
    assert by_node["node-b"]["unbooked_gpu_hours"] == 0.5
    assert by_node["node-a"]["booked_gpu_hours"] == 4.0
    by_tenant = client.get("/api/v1/usage/report", params={"by": "tenant", **window}).json()
    assert sum(r["booked_s"] for r in by_tenant["rows"]) == 4 * H


def test_report_never_counts_the_future(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    build_scenario(client, composed, clock)
    clock.set(T10 + 2 * H)
    params = {"start": "2026-11-23T10:00:00Z", "end": "2026-11-24T10:00:00Z"}
    body = client.get("/api/v1/usage/report", params=params).json()
    assert body["until"] == "2026-11-23T12:00:00+00:00"
    assert rows(body, "user")["alice"]["booked_s"] == 2 * H


def test_job_usage_and_history(client: TestClient, composed: Composed, clock: FakeClock) -> None:
    job_id = build_scenario(client, composed, clock)
    usage = client.get(f"/api/v1/jobs/{job_id}/usage")
    assert usage.status_code == 200, usage.text
    eff = usage.json()
    assert (eff["gpu_hours"], eff["wall_s"], eff["samples"]) == (1.0, H, 60)
    assert eff["utilization_mean_pct"] == 50.0 and eff["utilization_peak_pct"] == 50.0
    assert eff["memory_mean_mb"] == 300.0 and eff["memory_peak_mb"] == 400.0
    assert eff["claims"][0]["gpu"] == "node-a-gpu0"
    listed = client.get("/api/v1/usage/jobs", params={"user": "alice", "state": "completed"})
    assert listed.status_code == 200, listed.text
    (only,) = listed.json()["jobs"]
    assert (only["id"], only["wall_s"], only["gpu_s"], only["exit_code"]) == (job_id, H, H, 0)
    assert client.get("/api/v1/usage/jobs", params={"user": "bob"}).json()["jobs"] == []


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"by": "planet"}, "bad_by"),
        ({"start": "2026-11-23T10:00:00Z", "end": "2026-11-23T10:00:00Z"}, "bad_window"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-11-23T10:00:00Z"}, "window_too_long"),
        ({"start": "yesterday"}, None),
    ],
)
def test_report_bad_input_is_a_clear_400(
    client: TestClient, params: dict[str, str], code: str | None
) -> None:
    response = client.get("/api/v1/usage/report", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] and (code is None or body["code"] == code)


def test_history_refuses_unfinished_states_and_unknown_jobs_404(client: TestClient) -> None:
    assert client.get("/api/v1/usage/jobs", params={"state": "running"}).status_code == 400
    assert client.get("/api/v1/jobs/999999/usage").status_code == 404
    assert client.get("/api/v1/jobs/nope/usage").status_code == 404


def test_report_needs_a_signed_in_user(anon: TestClient, alice: TestClient) -> None:
    assert anon.get("/api/v1/usage/report").status_code == 401
    assert alice.get("/api/v1/usage/report").status_code == 200
    assert anon.get("/api/v1/usage/jobs").status_code == 200  # public, like the job list


def test_metrics_count_gpu_hours_by_user_and_tenant(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    build_scenario(client, composed, clock)
    text = client.get("/metrics").text
    job_lines = [line for line in text.splitlines() if line.startswith("procplan_job_gpu_hours")]
    booked = [line for line in text.splitlines() if line.startswith("procplan_booked_gpu_hours")]
    assert any('user="alice"' in line and line.endswith(" 1.0") for line in job_lines), job_lines
    assert any('user="alice"' in line and line.endswith(" 4.0") for line in booked), booked
    assert "# TYPE procplan_job_gpu_hours_total counter" in text


def test_booking_usage(client: TestClient, composed: Composed, clock: FakeClock) -> None:
    build_scenario(client, composed, clock)
    (booking,) = client.get("/api/v1/bookings", params={"user": "alice"}).json()["bookings"]
    response = client.get(f"/api/v1/bookings/{booking['id']}/usage")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["booked_gpu_hours"], body["used_gpu_hours"], body["idle_fraction"]) == (
        4.0, 2.0, 0.5)  # fmt: skip
    assert body["until"] == "2026-11-23T14:00:00+00:00"
    assert client.get("/api/v1/bookings/424242/usage").status_code == 404
    assert client.get("/api/v1/bookings/x/usage").status_code in (400, 404)


def test_daily_reports_add_up_to_the_window(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    build_scenario(client, composed, clock)
    clock.set(T10 + 30 * H)  # the next day, so the window spans two UTC days
    window = {"start": "2026-11-23T08:00:00Z", "end": "2026-11-25T00:00:00Z"}
    daily = client.get("/api/v1/usage/daily", params={"by": "user", **window})
    assert daily.status_code == 200, daily.text
    days = daily.json()["days"]
    assert [d["start"] for d in days] == ["2026-11-23T08:00:00+00:00", "2026-11-24T00:00:00+00:00"]
    whole = client.get("/api/v1/usage/report", params={"by": "user", **window}).json()
    for key in ("booked_s", "used_s", "job_s", "unbooked_s", "wait_s", "jobs"):
        assert sum(d["total"][key] for d in days) == whole["total"][key], key
    assert rows(days[0], "user")["alice"]["booked_gpu_hours"] == 4.0
    too_long = {"start": "2026-01-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}
    assert client.get("/api/v1/usage/daily", params=too_long).status_code == 400


def test_daily_days_of_a_time_zone(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    """``tz`` makes the days that zone's calendar days (the web page asks for the browser's):
    alice's 10:00Z–14:00Z is 23:00–03:00 in Auckland (UTC+13), 1 h on the 23rd, 3 h on the 24th."""
    build_scenario(client, composed, clock)
    window = {"start": "2026-11-23T00:00:00+13:00", "end": "2026-11-25T00:00:00+13:00"}
    daily = client.get(
        "/api/v1/usage/daily", params={"by": "user", "tz": "Pacific/Auckland", **window}
    )
    assert daily.status_code == 200, daily.text
    days = daily.json()["days"]
    assert [d["start"] for d in days] == ["2026-11-22T11:00:00+00:00", "2026-11-23T11:00:00+00:00"]
    assert [rows(d, "user")["alice"]["booked_gpu_hours"] for d in days] == [1.0, 3.0]
    utc = client.get("/api/v1/usage/daily", params={"by": "user", **window}).json()["days"]
    assert [d["start"][:13] for d in utc] == ["2026-11-22T11", "2026-11-23T00", "2026-11-24T00"]
    for bad in ("Mars/Olympus", "../etc/passwd", "x" * 65, "Europe", "Etc"):  # a folder: 500 once
        reply = client.get("/api/v1/usage/daily", params={"tz": bad, **window})
        assert reply.status_code == 400, (bad, reply.text)
        assert reply.json()["code"] == "invalid_tz", reply.text
