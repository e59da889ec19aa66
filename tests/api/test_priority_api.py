"""``GET /api/v1/queue/priority`` (``sprio``): pending jobs in queue order with the parts of
their effective priority, computed from the cycle's snapshot and formula."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from procplan.server import Composed

ROW_KEYS = [
    "job_id", "position", "user", "tenant", "priority", "age", "fairshare", "size", "length",
    "effective",
]  # fmt: skip


def submit(client: TestClient, user: str, **fields: Any) -> str:
    body = {"command": ["python", "train.py"], "node_id": "node-a", **fields}
    response = client.post("/api/v1/jobs", json=body, headers={"X-ProcPlan-User": user})
    assert response.status_code == 201, response.text
    return str(response.json()["job_id"])


def test_pending_jobs_in_queue_order_with_their_parts(
    client: TestClient, composed: Composed
) -> None:
    submit(client, "alice", gpu_count=4, time_limit_s=3600)
    composed.scheduler.run_once()  # node-a is full: the next ones wait
    low = submit(client, "alice", priority="low")
    high = submit(client, "bob", priority="high")
    normal = submit(client, "bob")
    composed.scheduler.run_once()
    body = client.get("/api/v1/queue/priority").json()
    assert list(body) == ["as_of", "jobs", "total"]
    assert body["as_of"] == "2026-11-23T10:00:00+00:00" and body["total"] == 3
    rows = body["jobs"]
    assert [r["job_id"] for r in rows] == [high, normal, low]
    assert [r["position"] for r in rows] == [1, 2, 3]
    assert list(rows[0]) == ROW_KEYS
    for row in rows:
        parts = row["priority"] + row["age"] + row["fairshare"] + row["size"] + row["length"]
        assert abs(parts - row["effective"]) < 0.02
    assert rows[0]["priority"] > rows[1]["priority"] > rows[2]["priority"]
    # The same order the cycle wrote as positions.
    for row in rows:
        job = client.get(f"/api/v1/jobs/{row['job_id']}").json()
        assert job["queue_position"] == row["position"]


def test_filters_keep_places_in_the_whole_queue(client: TestClient, composed: Composed) -> None:
    submit(client, "alice", gpu_count=4, time_limit_s=3600)
    composed.scheduler.run_once()
    submit(client, "bob", priority="high")
    mine = submit(client, "alice")
    body = client.get("/api/v1/queue/priority", params={"user": "alice"}).json()
    assert [(r["job_id"], r["position"]) for r in body["jobs"]] == [(mine, 2)]
    cut = client.get("/api/v1/queue/priority", params={"limit": 1}).json()
    assert (len(cut["jobs"]), cut["total"], cut["truncated"]) == (1, 2, True)
    assert client.get("/api/v1/queue/priority", params={"tenant": "other"}).json()["jobs"] == []


def test_bad_limit_is_a_400(client: TestClient) -> None:
    response = client.get("/api/v1/queue/priority", params={"limit": "0"})
    assert response.status_code == 400
    assert "limit must be an integer between 1 and 10000" in response.json()["error"]


def test_empty_queue(client: TestClient) -> None:
    body = client.get("/api/v1/queue/priority").json()
    assert (body["jobs"], body["total"]) == ([], 0)
