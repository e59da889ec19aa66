"""Contract tests of the ProcPlan-compatible API (COMPAT.md section 1).

Every route, shape (with key order: JSON bytes depend on it), status code and message of the
contract, plus the listed fixes. In-process: the ``client`` fixture serves the demo topology
(node-a: 4×A100, node-b: 8×H100) with the clock fixed at Monday 2026-11-23 10:00 UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import admin_client

from procplan.api.app import DEFAULT_WEB_ROOT
from procplan.config import Settings
from procplan.server import Composed, compose
from procplan.testing import FakeClock

# The demo topology plus the server's own host (named "workstation" by tests/conftest.py).
DEMO_NODES = ["node-a", "node-b", "workstation"]

JSON_TYPE = "application/json; charset=utf-8"
FIXED_NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC (same as tests/conftest.py)
HOUR = 3600
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")

NODE_KEYS = ["id", "name", "gpu_count", "gpus"]
GPU_KEYS = ["id", "kind"]
B_KEYS = ["id", "user_label", "start", "end", "status", "gpu_ids", "priority"]
PAYLOAD_KEYS = ["node", "start", "end", "hours", "grid"]
HOUR_KEYS = [
    "start",
    "end",
    "available_gpu_ids",
    "used_gpu_ids",
    "available_count",
    "used_count",
    "bookings",
]
DAY_SLOT_KEYS = ["start", "end", "status", "booked_hours", "total_hours", "priority", "bookings"]
A_GPUS = [f"node-a-gpu{i}" for i in range(4)]
B_GPUS = [f"node-b-gpu{i}" for i in range(8)]


def ts(day: int, hour: int = 0) -> str:
    """A returned timestamp of November 2026 (``day`` may spill into December)."""
    if day > 30:
        return f"2026-12-{day - 30:02d}T{hour:02d}:00:00+00:00"
    return f"2026-11-{day:02d}T{hour:02d}:00:00+00:00"


def fromiso_error(text: str) -> str:
    """The message ``datetime.fromisoformat`` gives for ``text`` (the contract quotes it)."""
    try:
        datetime.fromisoformat(text)
    except ValueError as exc:
        return str(exc)
    raise AssertionError(f"{text!r} parses")


def assert_error(response: Any, status: int, message: str | None = None) -> dict[str, Any]:
    """ProcPlan's error body: exactly ``{"error", "status"}``, JSON with charset."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys()) == ["error", "status"], body
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    if message is not None:
        assert body["error"] == message
    return body


def book(client: TestClient, **fields: Any) -> Any:
    payload: dict[str, Any] = {
        "node_id": "node-a",
        "start": ts(23, 12),
        "end": ts(23, 14),
        "user_label": "AB",
    }
    payload.update(fields)
    if "gpu_ids" not in payload and "gpu_count" not in payload:
        payload["gpu_ids"] = ["node-a-gpu0"]
    return client.post("/api/book", json={k: v for k, v in payload.items() if v is not None})


def booked(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = book(client, **fields)
    assert response.status_code == 201, response.text
    return response.json()


def avail(client: TestClient, node: str = "node-a", **params: str) -> dict[str, Any]:
    response = client.get("/api/availability", params={"node_id": node, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_TYPE
    return response.json()


def all_timestamps(value: Any) -> Iterator[str]:
    """Every string under a key that names a timestamp."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("start", "end", "overlap_start", "overlap_end") and isinstance(item, str):
                yield item
            else:
                yield from all_timestamps(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_timestamps(item)


# ------------------------------------------------------------------------------ /api/nodes


def test_nodes_shape_and_config_order(client: TestClient) -> None:
    response = client.get("/api/nodes")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys()) == ["nodes"]
    assert [n["id"] for n in body["nodes"]] == DEMO_NODES
    for node in body["nodes"]:
        assert list(node.keys()) == NODE_KEYS
        for gpu in node["gpus"]:
            assert list(gpu.keys()) == GPU_KEYS
    a, b, _local = body["nodes"]
    assert a == {
        "id": "node-a",
        "name": "Demo Node A",
        "gpu_count": 4,
        "gpus": [{"id": g, "kind": "A100"} for g in A_GPUS],
    }
    assert b["gpu_count"] == 8
    assert [g["id"] for g in b["gpus"]] == B_GPUS
    assert {g["kind"] for g in b["gpus"]} == {"H100"}
    # Compact JSON (no spaces after separators).
    assert response.content.startswith(b'{"nodes":[{"id":"node-a","name":"Demo Node A"')


# -------------------------------------------------------------------- availability: hour grid


@pytest.fixture
def hour_scene(client: TestClient, clock: FakeClock) -> dict[str, int]:
    """node-a: gpu0 12-14 high, gpu1 13-15 low (gpu_count picks), gpu2 cancelled 12-13,
    gpu3 09-13 released at 10:30 (completed, ends 11:00)."""
    first = booked(client, gpu_ids=["node-a-gpu0"], priority="high")
    second = booked(
        client, gpu_ids=["node-a-gpu1"], start=ts(23, 13), end=ts(23, 15), priority="low"
    )
    cancelled = booked(client, gpu_ids=["node-a-gpu2"], end=ts(23, 13), user_label="CX")
    assert client.delete(f"/api/bookings/{cancelled['booking_id']}").status_code == 200
    past = booked(client, gpu_ids=["node-a-gpu3"], start=ts(23, 9), end=ts(23, 13))
    clock.advance(30 * 60)
    done = client.post("/api/mark_done", json={"booking_id": past["booking_id"]})
    assert done.status_code == 200
    clock.set(FIXED_NOW)
    return {
        "high": first["booking_id"],
        "low": second["booking_id"],
        "cancelled": cancelled["booking_id"],
        "completed": past["booking_id"],
    }


def test_hour_grid_key_sets_and_order(client: TestClient, hour_scene: dict[str, int]) -> None:
    body = avail(client, start="2026-11-23T00:00:00Z", end="2026-11-24T00:00:00Z")
    assert list(body.keys()) == PAYLOAD_KEYS
    assert list(body["node"].keys()) == NODE_KEYS
    assert body["start"] == ts(23) and body["end"] == ts(24)
    assert len(body["hours"]) == 24
    for i, hour in enumerate(body["hours"]):
        assert list(hour.keys()) == HOUR_KEYS
        assert hour["start"] == ts(23, i)
        assert hour["end"] == (ts(24) if i == 23 else ts(23, i + 1))
        for b in hour["bookings"]:
            assert list(b.keys()) == B_KEYS
    grid = body["grid"]
    assert list(grid.keys()) == ["hours", "rows"]
    assert grid["hours"] == [{"start": h["start"], "end": h["end"]} for h in body["hours"]]
    for h in grid["hours"]:
        assert list(h.keys()) == ["start", "end"]
    assert [row["gpu"] for row in grid["rows"]] == [{"id": g, "kind": "A100"} for g in A_GPUS]
    for row in grid["rows"]:
        assert list(row.keys()) == ["gpu", "hour_slots"]
        assert list(row["gpu"].keys()) == GPU_KEYS
        assert len(row["hour_slots"]) == 24
        for slot in row["hour_slots"]:
            if slot["status"] == "booked":
                assert list(slot.keys()) == ["start", "end", "status", "booking"]
                assert list(slot["booking"].keys()) == B_KEYS
            else:
                assert slot["status"] == "free"
                assert list(slot.keys()) == ["start", "end", "status"]
    for stamp in all_timestamps(body):
        assert ISO_RE.match(stamp), stamp


def test_hour_grid_counts_only_active_but_lists_every_status(
    client: TestClient, hour_scene: dict[str, int]
) -> None:
    body = avail(client, start="2026-11-23T00:00:00Z", end="2026-11-24T00:00:00Z")
    hours = body["hours"]

    # 09-11: only the completed booking (gpu3): listed, not counted.
    for i in (9, 10):
        assert [(b["id"], b["status"]) for b in hours[i]["bookings"]] == [
            (hour_scene["completed"], "completed")
        ]
        assert hours[i]["used_gpu_ids"] == [] and hours[i]["used_count"] == 0
        assert hours[i]["available_gpu_ids"] == A_GPUS and hours[i]["available_count"] == 4
    completed = hours[9]["bookings"][0]
    assert completed == {
        "id": hour_scene["completed"],
        "user_label": "AB",
        "start": ts(23, 9),
        "end": ts(23, 11),
        "status": "completed",
        "gpu_ids": ["node-a-gpu3"],
        "priority": "medium",
    }
    assert hours[11]["bookings"] == []

    # 12-13: high (gpu0) active, cancelled (gpu2) listed; ordered by (start, id).
    assert [(b["id"], b["status"]) for b in hours[12]["bookings"]] == [
        (hour_scene["high"], "active"),
        (hour_scene["cancelled"], "cancelled"),
    ]
    assert hours[12]["used_gpu_ids"] == ["node-a-gpu0"]
    assert hours[12]["available_gpu_ids"] == ["node-a-gpu1", "node-a-gpu2", "node-a-gpu3"]
    assert (hours[12]["used_count"], hours[12]["available_count"]) == (1, 3)

    # 13-14: gpu0 and gpu1 used, in config order.
    assert hours[13]["used_gpu_ids"] == ["node-a-gpu0", "node-a-gpu1"]
    assert hours[13]["available_gpu_ids"] == ["node-a-gpu2", "node-a-gpu3"]
    assert [b["id"] for b in hours[13]["bookings"]] == [hour_scene["high"], hour_scene["low"]]
    assert hours[14]["used_gpu_ids"] == ["node-a-gpu1"]
    assert hours[15]["used_count"] == 0 and hours[15]["bookings"] == []

    rows = {row["gpu"]["id"]: row["hour_slots"] for row in body["grid"]["rows"]}
    assert [s["status"] for s in rows["node-a-gpu0"][11:15]] == ["free", "booked", "booked", "free"]
    assert rows["node-a-gpu0"][12]["booking"]["id"] == hour_scene["high"]
    assert rows["node-a-gpu0"][12]["booking"]["priority"] == "high"
    assert rows["node-a-gpu1"][14]["booking"]["priority"] == "low"
    # Cancelled and completed bookings never make a slot booked.
    assert all(s["status"] == "free" for s in rows["node-a-gpu2"])
    assert all(s["status"] == "free" for s in rows["node-a-gpu3"])


def test_availability_is_never_stale(client: TestClient) -> None:
    window = {"start": "2026-11-23T00:00:00Z", "end": "2026-11-24T00:00:00Z"}
    assert avail(client, **window)["hours"][12]["used_count"] == 0
    created = booked(client, gpu_ids=["node-a-gpu3"])
    assert avail(client, **window)["hours"][12]["used_gpu_ids"] == ["node-a-gpu3"]
    client.delete(f"/api/bookings/{created['booking_id']}")
    assert avail(client, **window)["hours"][12]["used_count"] == 0


def test_hour_grid_of_node_b_follows_config_order(client: TestClient) -> None:
    booked(client, node_id="node-b", gpu_ids=["node-b-gpu7", "node-b-gpu2"])
    body = avail(client, "node-b", start="2026-11-23T12:00:00Z", end="2026-11-23T14:00:00Z")
    assert len(body["hours"]) == 2
    assert body["hours"][0]["used_gpu_ids"] == ["node-b-gpu2", "node-b-gpu7"]
    assert body["hours"][0]["available_gpu_ids"] == [
        g for g in B_GPUS if g not in ("node-b-gpu2", "node-b-gpu7")
    ]
    assert body["hours"][0]["bookings"][0]["gpu_ids"] == ["node-b-gpu7", "node-b-gpu2"]
    assert [row["gpu"]["id"] for row in body["grid"]["rows"]] == B_GPUS


# --------------------------------------------------------------------- availability: day grid


@pytest.fixture
def day_scene(client: TestClient) -> dict[str, int]:
    """node-a over 2026-11-23 00:00 .. 2026-11-25 12:00 (2.5 days)."""
    ids = {
        "a": booked(
            client,
            gpu_ids=["node-a-gpu0"],
            start=ts(23, 10),
            end=ts(23, 22),
            priority="high",
            user_label="AA",
        ),
        "b": booked(
            client,
            gpu_ids=["node-a-gpu0"],
            start=ts(23, 22),
            end=ts(24, 2),
            priority="low",
            user_label="BB",
        ),
        "c": booked(
            client, gpu_ids=["node-a-gpu1"], start=ts(24, 0), end=ts(25, 18), user_label="CC"
        ),
        "d": booked(
            client, gpu_ids=["node-a-gpu2"], start=ts(23, 12), end=ts(23, 18), user_label="DD"
        ),
    }
    assert client.delete(f"/api/bookings/{ids['d']['booking_id']}").status_code == 200
    return {key: value["booking_id"] for key, value in ids.items()}


def test_day_grid_shape(client: TestClient, day_scene: dict[str, int]) -> None:
    body = avail(
        client, start="2026-11-23T00:00:00Z", end="2026-11-25T12:00:00Z", granularity="day"
    )
    assert list(body.keys()) == PAYLOAD_KEYS
    assert body["hours"] == []
    assert body["start"] == ts(23) and body["end"] == ts(25, 12)
    grid = body["grid"]
    assert list(grid.keys()) == ["hours", "days", "rows"]
    assert grid["hours"] == []
    assert grid["days"] == [
        {"key": "2026-11-23", "start": ts(23), "end": ts(24)},
        {"key": "2026-11-24", "start": ts(24), "end": ts(25)},
        {"key": "2026-11-25", "start": ts(25), "end": ts(25, 12)},
    ]
    for day in grid["days"]:
        assert list(day.keys()) == ["key", "start", "end"]
    assert [row["gpu"]["id"] for row in grid["rows"]] == A_GPUS
    for row in grid["rows"]:
        assert list(row.keys()) == ["gpu", "day_slots"]
        assert len(row["day_slots"]) == 3
        for slot in row["day_slots"]:
            assert list(slot.keys()) == DAY_SLOT_KEYS
            for entry in slot["bookings"]:
                assert list(entry.keys()) == [*B_KEYS, "hours", "overlap_start", "overlap_end"]
        assert [s["total_hours"] for s in row["day_slots"]] == [24, 24, 12]
    for stamp in all_timestamps(body):
        assert ISO_RE.match(stamp), stamp


def test_day_grid_buckets(client: TestClient, day_scene: dict[str, int]) -> None:
    body = avail(
        client, start="2026-11-23T00:00:00Z", end="2026-11-25T12:00:00Z", granularity="day"
    )
    rows = {row["gpu"]["id"]: row["day_slots"] for row in body["grid"]["rows"]}

    gpu0 = rows["node-a-gpu0"]
    assert gpu0[0]["status"] == "partial"
    assert gpu0[0]["booked_hours"] == 14
    assert gpu0[0]["priority"] == "high"
    assert [
        (e["id"], e["hours"], e["overlap_start"], e["overlap_end"]) for e in gpu0[0]["bookings"]
    ] == [
        (day_scene["a"], 12, ts(23, 10), ts(23, 22)),
        (day_scene["b"], 2, ts(23, 22), ts(24)),
    ]
    entry = gpu0[0]["bookings"][1]
    assert {k: entry[k] for k in B_KEYS} == {
        "id": day_scene["b"],
        "user_label": "BB",
        "start": ts(23, 22),
        "end": ts(24, 2),
        "status": "active",
        "gpu_ids": ["node-a-gpu0"],
        "priority": "low",
    }
    assert (gpu0[1]["status"], gpu0[1]["booked_hours"], gpu0[1]["priority"]) == (
        "partial",
        2,
        "low",
    )
    assert [(e["hours"], e["overlap_start"], e["overlap_end"]) for e in gpu0[1]["bookings"]] == [
        (2, ts(24), ts(24, 2))
    ]
    assert gpu0[2] == {
        "start": ts(25),
        "end": ts(25, 12),
        "status": "free",
        "booked_hours": 0,
        "total_hours": 12,
        "priority": None,
        "bookings": [],
    }

    gpu1 = rows["node-a-gpu1"]
    assert gpu1[0]["status"] == "free" and gpu1[0]["priority"] is None
    assert (gpu1[1]["status"], gpu1[1]["booked_hours"], gpu1[1]["total_hours"]) == (
        "occupied",
        24,
        24,
    )
    assert gpu1[1]["priority"] == "medium"
    # The last bucket is cut at the window end: 12 of 12 hours booked is occupied.
    assert (gpu1[2]["status"], gpu1[2]["booked_hours"], gpu1[2]["total_hours"]) == (
        "occupied",
        12,
        12,
    )
    assert [(e["hours"], e["overlap_start"], e["overlap_end"]) for e in gpu1[2]["bookings"]] == [
        (12, ts(25), ts(25, 12))
    ]
    # Cancelled (gpu2) and untouched (gpu3) GPUs are free everywhere.
    for gpu in ("node-a-gpu2", "node-a-gpu3"):
        assert all(s["status"] == "free" and s["bookings"] == [] for s in rows[gpu])


def test_day_grid_priority_is_the_highest_active(client: TestClient) -> None:
    booked(client, gpu_ids=["node-a-gpu0"], start=ts(23, 10), end=ts(23, 11), priority="low")
    booked(client, gpu_ids=["node-a-gpu0"], start=ts(23, 11), end=ts(23, 12), priority="high")
    booked(client, gpu_ids=["node-a-gpu0"], start=ts(23, 12), end=ts(23, 13), priority="medium")
    body = avail(
        client, start="2026-11-23T00:00:00Z", end="2026-11-24T00:00:00Z", granularity="day"
    )
    slot = body["grid"]["rows"][0]["day_slots"][0]
    assert (slot["status"], slot["booked_hours"], slot["priority"]) == ("partial", 3, "high")
    assert [e["priority"] for e in slot["bookings"]] == ["low", "high", "medium"]


def test_day_grid_omits_completed_bookings(client: TestClient, clock: FakeClock) -> None:
    created = booked(client, gpu_ids=["node-a-gpu3"], start=ts(23, 9), end=ts(23, 15))
    clock.advance(90 * 60)  # 11:30
    assert (
        client.post("/api/mark_done", json={"booking_id": created["booking_id"]}).status_code == 200
    )
    body = avail(
        client, start="2026-11-23T00:00:00Z", end="2026-11-24T00:00:00Z", granularity="day"
    )
    slot = body["grid"]["rows"][3]["day_slots"][0]
    assert slot["status"] == "free" and slot["bookings"] == [] and slot["priority"] is None


def test_day_buckets_start_at_window_start_and_key_is_bucket_start_date(
    client: TestClient,
) -> None:
    booked(client, gpu_ids=["node-a-gpu0"], start=ts(23, 20), end=ts(24, 4))
    body = avail(
        client, start="2026-11-23T20:00:00Z", end="2026-11-25T20:00:00Z", granularity="day"
    )
    assert body["grid"]["days"] == [
        {"key": "2026-11-23", "start": ts(23, 20), "end": ts(24, 20)},
        {"key": "2026-11-24", "start": ts(24, 20), "end": ts(25, 20)},
    ]
    first = body["grid"]["rows"][0]["day_slots"][0]
    assert (first["booked_hours"], first["total_hours"], first["status"]) == (8, 24, "partial")


def test_day_grid_single_partial_day(client: TestClient) -> None:
    body = avail(
        client, start="2026-11-23T10:00:00Z", end="2026-11-23T15:00:00Z", granularity="day"
    )
    assert body["grid"]["days"] == [{"key": "2026-11-23", "start": ts(23, 10), "end": ts(23, 15)}]
    assert body["grid"]["rows"][0]["day_slots"][0]["total_hours"] == 5


# ------------------------------------------------------------------ availability: parameters


@pytest.mark.parametrize(
    ("now_hour", "now_minute", "expected_day"),
    [(10, 0, 23), (0, 0, 23), (19, 59, 23), (20, 30, 24), (23, 59, 24)],
)
def test_default_window(
    client: TestClient, clock: FakeClock, now_hour: int, now_minute: int, expected_day: int
) -> None:
    clock.set(FIXED_NOW - 10 * HOUR + now_hour * HOUR + now_minute * 60)
    body = avail(client)
    assert (body["start"], body["end"]) == (ts(expected_day), ts(expected_day + 1))
    assert len(body["hours"]) == 24


def test_default_window_when_only_one_bound_is_given(client: TestClient) -> None:
    assert avail(client, start="2026-12-01T00:00:00Z")["start"] == ts(23)
    assert avail(client, end="2026-12-01T00:00:00Z")["end"] == ts(24)


def test_default_window_day_granularity(client: TestClient, clock: FakeClock) -> None:
    clock.set(FIXED_NOW + 11 * HOUR)  # 21:00: tomorrow
    body = avail(client, granularity="day")
    assert body["grid"]["days"] == [{"key": "2026-11-24", "start": ts(24), "end": ts(25)}]


@pytest.mark.parametrize("value", ["DAY", "Day", "day", " day "])
def test_granularity_day_is_case_insensitive(client: TestClient, value: str) -> None:
    body = avail(client, granularity=value)
    assert body["hours"] == [] and "days" in body["grid"]


@pytest.mark.parametrize("value", ["HOUR", "Hour", "hour", ""])
def test_granularity_hour_is_case_insensitive_and_default(client: TestClient, value: str) -> None:
    body = avail(client, granularity=value)
    assert len(body["hours"]) == 24 and "days" not in body["grid"]


@pytest.mark.parametrize(
    "start",
    [
        "2026-11-23T00:00:00+00:00",
        "2026-11-23T01:00:00+01:00",
        "2026-11-23T00:00:00",
        "2026-11-23",
        "2026-11-23T00:00:00Z",
    ],
)
def test_availability_accepts_iso_variants(client: TestClient, start: str) -> None:
    body = avail(client, start=start, end="2026-11-23T05:00:00Z")
    assert body["start"] == ts(23) and len(body["hours"]) == 5


def test_availability_errors(client: TestClient) -> None:
    good = {"node_id": "node-a", "start": "2026-11-23T00:00:00Z", "end": "2026-11-24T00:00:00Z"}

    def get(**changes: str | None) -> Any:
        params = {**good, **changes}
        return client.get(
            "/api/availability", params={k: v for k, v in params.items() if v is not None}
        )

    assert_error(get(node_id=None), 400, "Query parameter 'node_id' is required")
    assert_error(get(node_id=""), 400, "Query parameter 'node_id' is required")
    assert_error(get(start="garbage"), 400, fromiso_error("garbage"))
    assert_error(get(end="2026-13-01T00:00:00"), 400, fromiso_error("2026-13-01T00:00:00"))
    assert_error(
        get(start="2026-11-23T00:30:00Z"), 400, "Timestamps must align exactly on the hour"
    )
    assert_error(get(end="2026-11-24T00:00:01Z"), 400, "Timestamps must align exactly on the hour")
    assert_error(get(end=good["start"]), 400, "Availability end must be after start")
    assert_error(get(end="2026-11-22T00:00:00Z"), 400, "Availability end must be after start")
    assert_error(get(granularity="week"), 400, "Granularity must be either 'hour' or 'day'")
    assert_error(get(node_id="nope"), 400, "Unknown node id 'nope'")


def test_availability_window_limit(client: TestClient) -> None:
    params = {"node_id": "node-a", "start": "2026-01-01T00:00:00Z", "granularity": "day"}
    too_long = client.get("/api/availability", params={**params, "end": "2027-02-06T00:00:00Z"})
    body = assert_error(too_long, 400)  # 401 days
    assert "400 days" in body["error"]
    ok = client.get("/api/availability", params={**params, "end": "2027-02-05T00:00:00Z"})
    assert ok.status_code == 200
    assert len(ok.json()["grid"]["days"]) == 400


# -------------------------------------------------------------------- /api/availability_bulk


def test_bulk_without_body_lists_all_nodes_in_config_order(client: TestClient) -> None:
    booked(client)
    response = client.post("/api/availability_bulk")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys()) == ["availability"]
    assert [p["node"]["id"] for p in body["availability"]] == DEMO_NODES
    # Each payload is exactly the GET payload for that node (default window).
    assert body["availability"][0] == avail(client, "node-a")
    assert body["availability"][1] == avail(client, "node-b")
    assert client.post("/api/availability_bulk", json={}).json() == body


def test_bulk_requested_order_and_window(client: TestClient) -> None:
    booked(client, gpu_ids=["node-a-gpu1"], start=ts(24, 3), end=ts(24, 5))
    window = {"start": "2026-11-24T00:00:00Z", "end": "2026-11-26T00:00:00Z"}
    response = client.post(
        "/api/availability_bulk",
        json={"node_ids": ["node-b", "node-a"], "granularity": "DAY", **window},
    )
    assert response.status_code == 200, response.text
    payloads = response.json()["availability"]
    assert [p["node"]["id"] for p in payloads] == ["node-b", "node-a"]
    assert payloads[1] == avail(client, "node-a", granularity="day", **window)
    assert payloads[1]["grid"]["rows"][1]["day_slots"][0]["booked_hours"] == 2


def test_bulk_errors(client: TestClient) -> None:
    def post(content: bytes) -> Any:
        return client.post(
            "/api/availability_bulk",
            content=content,
            headers={"content-type": "application/json"},
        )

    body = assert_error(post(b"{not json"), 400)
    assert body["error"].startswith("Invalid JSON payload: ")
    assert_error(post(b"[]"), 400, "JSON payload must be an object")
    assert_error(post(b'"node-a"'), 400, "JSON payload must be an object")
    for bad in ('"node-a"', "{}", "[true]", "[null]", '[["node-a"]]'):
        assert_error(
            post(b'{"node_ids": ' + bad.encode() + b"}"),
            400,
            "'node_ids' must be an array of ids when provided",
        )
    assert_error(post(b'{"node_ids": ["node-a", "ghost"]}'), 400, "Unknown node id 'ghost'")
    assert_error(post(b'{"node_ids": [7]}'), 400, "Unknown node id '7'")
    assert_error(
        post(b'{"granularity": "week"}'), 400, "Granularity must be either 'hour' or 'day'"
    )
    assert_error(
        post(b'{"start": "2026-11-23T00:30:00Z", "end": "2026-11-24T00:00:00Z"}'),
        400,
        "Timestamps must align exactly on the hour",
    )
    assert_error(
        post(b'{"start": "2026-11-23T00:00:00Z", "end": "2026-11-23T00:00:00Z"}'),
        400,
        "Availability end must be after start",
    )
    assert_error(post(b'{"start": "x", "end": "2026-11-24T00:00:00Z"}'), 400, fromiso_error("x"))


def test_bulk_empty_node_list(client: TestClient) -> None:
    response = client.post("/api/availability_bulk", json={"node_ids": []})
    assert response.status_code == 200
    assert response.json() == {"availability": []}


# ---------------------------------------------------------------------------------- /api/book


def test_book_201_shape(client: TestClient) -> None:
    response = book(
        client, gpu_ids=["node-a-gpu2", "node-a-gpu0"], priority="high", user_label="  Alice  "
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys()) == [
        "booking_id",
        "node_id",
        "gpu_ids",
        "start",
        "end",
        "user_label",
        "priority",
    ]
    assert isinstance(body["booking_id"], int)
    assert body == {
        "booking_id": body["booking_id"],
        "node_id": "node-a",
        "gpu_ids": ["node-a-gpu2", "node-a-gpu0"],
        "start": ts(23, 12),
        "end": ts(23, 14),
        "user_label": "Alice",
        "priority": "high",
    }


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-11-23T12:00:00Z", "2026-11-23T13:00:00Z", (ts(23, 12), ts(23, 13))),
        ("2026-11-23T14:00:00+02:00", "2026-11-23T15:00:00+02:00", (ts(23, 12), ts(23, 13))),
        ("2026-11-23T12:00:00", "2026-11-23T13:00:00", (ts(23, 12), ts(23, 13))),
        ("2026-11-24", "2026-11-25", (ts(24), ts(25))),
    ],
)
def test_book_accepts_iso_variants(
    client: TestClient, start: str, end: str, expected: tuple[str, str]
) -> None:
    body = booked(client, start=start, end=end)
    assert (body["start"], body["end"]) == expected


@pytest.mark.parametrize(("raw", "wire"), [("HIGH", "high"), ("Low", "low"), ("medium", "medium")])
def test_book_priority_is_case_insensitive(client: TestClient, raw: str, wire: str) -> None:
    assert booked(client, priority=raw)["priority"] == wire


def test_book_priority_defaults_to_medium(client: TestClient) -> None:
    assert booked(client)["priority"] == "medium"


def test_book_gpu_count_picks_free_gpus(client: TestClient) -> None:
    booked(client, gpu_ids=["node-a-gpu0", "node-a-gpu1"])
    picked = booked(client, gpu_count=2)
    assert sorted(picked["gpu_ids"]) == ["node-a-gpu2", "node-a-gpu3"]
    assert_error(
        book(client, gpu_count=1), 400, "Not enough GPUs available for the requested window"
    )
    # Outside that window the whole node is free again.
    later = booked(client, gpu_count=4, start=ts(23, 14), end=ts(23, 15))
    assert later["gpu_ids"] == A_GPUS


def test_book_adjacent_windows_do_not_conflict(client: TestClient) -> None:
    booked(client, start=ts(23, 12), end=ts(23, 14))
    booked(client, start=ts(23, 14), end=ts(23, 16))
    booked(client, start=ts(23, 10), end=ts(23, 12))


def test_book_conflict_is_400_never_409(client: TestClient) -> None:
    booked(client, gpu_ids=["node-a-gpu1"], start=ts(23, 11), end=ts(23, 13))
    for window in ((ts(23, 12), ts(23, 14)), (ts(23, 10), ts(23, 12)), (ts(23, 10), ts(23, 16))):
        response = book(
            client, gpu_ids=["node-a-gpu0", "node-a-gpu1"], start=window[0], end=window[1]
        )
        assert_error(response, 400, "GPU 'node-a-gpu1' is already booked for the requested window")
    # Nothing of a refused booking was written.
    assert booked(client, gpu_ids=["node-a-gpu0"], start=ts(23, 11), end=ts(23, 13))


BOOK_ERRORS = [
    ({"node_id": None}, "Fields 'node_id', 'start', and 'end' are required"),
    ({"node_id": ""}, "Fields 'node_id', 'start', and 'end' are required"),
    ({"start": None}, "Fields 'node_id', 'start', and 'end' are required"),
    ({"end": None}, "Fields 'node_id', 'start', and 'end' are required"),
    ({"start": "tomorrow"}, "Invalid timestamp: " + fromiso_error("tomorrow")),
    ({"end": "2026-11-31T00:00:00"}, "Invalid timestamp: " + fromiso_error("2026-11-31T00:00:00")),
    ({"gpu_ids": "node-a-gpu0"}, "'gpu_ids' must be an array when provided"),
    ({"gpu_ids": {"id": "node-a-gpu0"}}, "'gpu_ids' must be an array when provided"),
    ({"gpu_ids": None, "gpu_count": "two"}, "'gpu_count' must be an integer"),
    ({"gpu_ids": None, "gpu_count": 1.5}, "'gpu_count' must be an integer"),
    ({"gpu_ids": None, "gpu_count": 2.0}, "'gpu_count' must be an integer"),
    ({"gpu_ids": None, "gpu_count": True}, "'gpu_count' must be an integer"),
    ({"gpu_ids": None, "gpu_count": [1]}, "'gpu_count' must be an integer"),
    ({"start": "2026-11-23T12:30:00Z"}, "Timestamps must align exactly on the hour"),
    ({"end": "2026-11-23T13:00:01Z"}, "Timestamps must align exactly on the hour"),
    ({"end": "2026-11-23T12:00:00Z"}, "Booking end must be after start"),
    ({"end": "2026-11-23T11:00:00Z"}, "Booking end must be after start"),
    ({"user_label": None}, "User label must not be empty"),
    ({"user_label": ""}, "User label must not be empty"),
    ({"user_label": "   "}, "User label must not be empty"),
    ({"node_id": "ghost"}, "Unknown node id 'ghost'"),
    ({"priority": "urgent"}, "Priority must be one of low, medium, high"),
    ({"priority": 3}, "Priority must be one of low, medium, high"),
    ({"gpu_ids": None}, "Either gpu_ids or a positive gpu_count must be provided"),
    ({"gpu_ids": []}, "Either gpu_ids or a positive gpu_count must be provided"),
    ({"gpu_ids": None, "gpu_count": 0}, "Either gpu_ids or a positive gpu_count must be provided"),
    ({"gpu_ids": None, "gpu_count": -2}, "Either gpu_ids or a positive gpu_count must be provided"),
    ({"gpu_ids": None, "gpu_count": 5}, "Not enough GPUs available for the requested window"),
    ({"gpu_ids": ["node-b-gpu0"]}, "One or more GPUs do not belong to the specified node"),
    (
        {"gpu_ids": ["node-a-gpu0", "ghost-gpu"]},
        "One or more GPUs do not belong to the specified node",
    ),
    ({"gpu_ids": ["node-a-gpu0", "node-a-gpu1", "node-a-gpu0"]}, "Duplicate GPU id 'node-a-gpu0'"),
]


@pytest.mark.parametrize(("changes", "message"), BOOK_ERRORS)
def test_book_400_messages(client: TestClient, changes: dict[str, Any], message: str) -> None:
    payload: dict[str, Any] = {
        "node_id": "node-a",
        "start": ts(23, 12),
        "end": ts(23, 13),
        "user_label": "AB",
        "gpu_ids": ["node-a-gpu0"],
    }
    payload.update(changes)
    payload = {k: v for k, v in payload.items() if v is not None}
    assert_error(client.post("/api/book", json=payload), 400, message)
    # Nothing was written.
    hours = avail(client)["hours"]
    assert all(h["bookings"] == [] for h in hours)


def test_book_body_errors(client: TestClient) -> None:
    def post(content: bytes) -> Any:
        return client.post(
            "/api/book", content=content, headers={"content-type": "application/json"}
        )

    assert post(b"{oops").json()["error"].startswith("Invalid JSON payload: ")
    assert_error(post(b"{oops"), 400)
    assert_error(post(b"[1, 2]"), 400, "JSON payload must be an object")
    assert_error(post(b""), 400, "Fields 'node_id', 'start', and 'end' are required")


def test_book_label_length_limit(client: TestClient) -> None:
    assert booked(client, user_label="x" * 64)["user_label"] == "x" * 64
    body = assert_error(book(client, user_label="y" * 65, start=ts(23, 14), end=ts(23, 15)), 400)
    assert "64" in body["error"]


def test_book_start_in_the_past_limit(client: TestClient, clock: FakeClock) -> None:
    # now = 10:00: 09:00 is exactly one hour ago (allowed), 08:00 is not.
    booked(client, start=ts(23, 9), end=ts(23, 11))
    body = assert_error(book(client, gpu_ids=["node-a-gpu1"], start=ts(23, 8), end=ts(23, 11)), 400)
    assert "1 hour" in body["error"] and "past" in body["error"]
    clock.advance(60)  # 10:01: 09:00 is now more than an hour ago
    body = assert_error(book(client, gpu_ids=["node-a-gpu2"], start=ts(23, 9), end=ts(23, 11)), 400)
    assert "1 hour" in body["error"]


def test_book_max_duration(client: TestClient) -> None:
    # 31 days exactly is allowed, one hour more is not.
    assert booked(client, start=ts(24), end=ts(55))["end"] == "2026-12-25T00:00:00+00:00"
    body = assert_error(
        book(client, gpu_ids=["node-a-gpu1"], start=ts(24), end="2026-12-25T01:00:00Z"), 400
    )
    assert "31 days" in body["error"]


# ----------------------------------------------------------------------------- /api/mark_done


def test_mark_done_responses(client: TestClient) -> None:
    created = booked(client)
    booking_id = created["booking_id"]
    response = client.post("/api/mark_done", json={"booking_id": booking_id})
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    assert list(response.json().keys()) == ["booking_id", "status"]
    assert response.json() == {"booking_id": booking_id, "status": "completed"}
    message = f"Booking '{booking_id}' is not active or does not exist"
    assert_error(client.post("/api/mark_done", json={"booking_id": booking_id}), 404, message)
    assert_error(
        client.post("/api/mark_done", json={"booking_id": 999}),
        404,
        "Booking '999' is not active or does not exist",
    )


def test_mark_done_of_a_future_booking_keeps_its_documented_answer(client: TestClient) -> None:
    """COMPAT.md section 1: ``mark_done`` answers 200 ``completed`` for any active booking,
    also one that has not begun (the native release refuses that, issue #17 item 3); the
    end is truncated to the start, so the whole window is free again."""
    made = booked(client, start="2026-11-24T10:00:00+00:00", end="2026-11-24T14:00:00+00:00")
    response = client.post("/api/mark_done", json={"booking_id": made["booking_id"]})
    assert response.status_code == 200
    assert response.json() == {"booking_id": made["booking_id"], "status": "completed"}
    again = booked(client, start="2026-11-24T10:00:00+00:00", end="2026-11-24T14:00:00+00:00")
    assert again["gpu_ids"] == made["gpu_ids"]


def test_mark_done_accepts_integer_string(client: TestClient) -> None:
    booking_id = booked(client)["booking_id"]
    response = client.post("/api/mark_done", json={"booking_id": str(booking_id)})
    assert response.status_code == 200
    assert response.json() == {"booking_id": booking_id, "status": "completed"}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "'booking_id' is required"),
        ({"booking_id": None}, "'booking_id' is required"),
        ({"booking_id": "abc"}, "'booking_id' must be an integer"),
        ({"booking_id": 1.5}, "'booking_id' must be an integer"),
        ({"booking_id": True}, "'booking_id' must be an integer"),
        ({"booking_id": [1]}, "'booking_id' must be an integer"),
    ],
)
def test_mark_done_400(client: TestClient, payload: dict[str, Any], message: str) -> None:
    assert_error(client.post("/api/mark_done", json=payload), 400, message)


def test_mark_done_without_body(client: TestClient) -> None:
    assert_error(client.post("/api/mark_done"), 400, "'booking_id' is required")


def test_mark_done_of_cancelled_booking_is_404(client: TestClient) -> None:
    booking_id = booked(client)["booking_id"]
    assert client.delete(f"/api/bookings/{booking_id}").status_code == 200
    assert_error(
        client.post("/api/mark_done", json={"booking_id": booking_id}),
        404,
        f"Booking '{booking_id}' is not active or does not exist",
    )


def test_mark_done_early_release_keeps_past_and_frees_future(
    client: TestClient, clock: FakeClock
) -> None:
    created = booked(
        client,
        gpu_ids=["node-a-gpu0", "node-a-gpu1"],
        start=ts(23, 9),
        end=ts(23, 15),
        user_label="ER",
    )
    booking_id = created["booking_id"]
    clock.advance(20 * 60)  # 10:20 → end becomes 11:00
    assert client.post("/api/mark_done", json={"booking_id": booking_id}).status_code == 200

    native = client.get(f"/api/v1/bookings/{booking_id}").json()
    assert (native["status"], native["start"], native["end"]) == (
        "completed",
        ts(23, 9),
        ts(23, 11),
    )

    # The freed future can be booked again, the kept hour cannot be double-booked.
    later = booked(client, gpu_ids=["node-a-gpu0", "node-a-gpu1"], start=ts(23, 11), end=ts(23, 15))
    # A completed booking holds nothing any more, not even the rest of its last hour.
    assert booked(client, gpu_ids=["node-a-gpu2"], start=ts(23, 10), end=ts(23, 15))

    hours = avail(client)["hours"]
    assert [(b["id"], b["status"], b["end"]) for b in hours[9]["bookings"]] == [
        (booking_id, "completed", ts(23, 11))
    ]
    assert hours[9]["used_count"] == 0
    assert (hours[10]["bookings"][0]["id"], hours[10]["bookings"][0]["status"]) == (
        booking_id,
        "completed",
    )
    assert hours[10]["used_gpu_ids"] == ["node-a-gpu2"]
    assert [b["id"] for b in hours[11]["bookings"] if b["id"] == booking_id] == []
    assert later["booking_id"] in [b["id"] for b in hours[11]["bookings"]]
    assert hours[11]["used_gpu_ids"] == ["node-a-gpu0", "node-a-gpu1", "node-a-gpu2"]


def test_mark_done_on_the_hour_and_before_start(client: TestClient, clock: FakeClock) -> None:
    running = booked(client, start=ts(23, 9), end=ts(23, 12))
    future = booked(client, gpu_ids=["node-a-gpu1"], start=ts(23, 14), end=ts(23, 16))
    # now = 10:00 exactly: the end becomes 10:00 (now is already a whole hour).
    client.post("/api/mark_done", json={"booking_id": running["booking_id"]})
    assert client.get(f"/api/v1/bookings/{running['booking_id']}").json()["end"] == ts(23, 10)
    # A booking released before it starts frees its whole window.
    client.post("/api/mark_done", json={"booking_id": future["booking_id"]})
    native = client.get(f"/api/v1/bookings/{future['booking_id']}").json()
    assert native["status"] == "completed"
    booked(client, gpu_ids=["node-a-gpu1"], start=ts(23, 14), end=ts(23, 16))


# ------------------------------------------------------------------------- DELETE /api/bookings


def test_delete_booking(client: TestClient) -> None:
    booking_id = booked(client)["booking_id"]
    response = client.delete(f"/api/bookings/{booking_id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    assert list(response.json().keys()) == ["booking_id", "status"]
    assert response.json() == {"booking_id": booking_id, "status": "cancelled"}
    message = f"Booking '{booking_id}' is not active or does not exist"
    assert_error(client.delete(f"/api/bookings/{booking_id}"), 404, message)
    assert_error(client.delete(f"/api/bookings/{booking_id}"), 404, message)
    assert_error(
        client.delete("/api/bookings/4242"), 404, "Booking '4242' is not active or does not exist"
    )
    # Its window is free again; history keeps it as cancelled.
    booked(client)
    listed = avail(client)["hours"][12]["bookings"]
    assert (listed[0]["id"], listed[0]["status"]) == (booking_id, "cancelled")


def test_delete_completed_booking_is_404(client: TestClient) -> None:
    booking_id = booked(client)["booking_id"]
    client.post("/api/mark_done", json={"booking_id": booking_id})
    assert_error(
        client.delete(f"/api/bookings/{booking_id}"),
        404,
        f"Booking '{booking_id}' is not active or does not exist",
    )


@pytest.mark.parametrize("path", ["/api/bookings", "/api/bookings/"])
def test_delete_without_id(client: TestClient, path: str) -> None:
    assert_error(client.delete(path), 400, "Booking id is required")


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "0x10"])
def test_delete_non_integer_id(client: TestClient, raw: str) -> None:
    assert_error(client.delete(f"/api/bookings/{raw}"), 400, "Booking id must be an integer")


# ------------------------------------------------------------------------ /api/reload_config


def write_config(path: Path, config: Any) -> None:
    path.write_text(config if isinstance(config, str) else json.dumps(config), encoding="utf-8")


INITIAL_CONFIG = {
    "nodes": [
        {"id": "zeta", "name": "Zeta box", "gpus": [{"id": "z0", "kind": "L40S"}, {"id": "z1"}]},
        {"id": "alpha", "gpus": [{"id": "a0", "kind": "A100"}]},
        {"id": "empty", "gpus": []},
    ]
}


@pytest.fixture
def configured(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[TestClient, Path, Composed]]:
    config = tmp_path / "cluster.json"
    write_config(config, INITIAL_CONFIG)
    built = compose(Settings(db_url=sqlite_url, config=config), clock=FakeClock(FIXED_NOW))
    with admin_client(built) as test_client:
        yield test_client, config, built
    built.store.dispose()


def test_config_file_order_and_defaults(configured: tuple[TestClient, Path, Composed]) -> None:
    client, _, _ = configured
    assert client.get("/api/nodes").json() == {
        "nodes": [
            {
                "id": "zeta",
                "name": "Zeta box",
                "gpu_count": 2,
                "gpus": [{"id": "z0", "kind": "L40S"}, {"id": "z1", "kind": "unspecified"}],
            },
            {
                "id": "alpha",
                "name": "alpha",
                "gpu_count": 1,
                "gpus": [{"id": "a0", "kind": "A100"}],
            },
            {"id": "empty", "name": "empty", "gpu_count": 0, "gpus": []},
        ]
    }
    body = avail(client, "empty")
    assert body["grid"]["rows"] == [] and body["hours"][0]["available_gpu_ids"] == []


def test_reload_config_applies_a_changed_file(
    configured: tuple[TestClient, Path, Composed],
) -> None:
    client, path, _ = configured
    changed = {
        "nodes": [
            {"id": "alpha", "gpus": [{"id": "a0", "kind": "A100"}, {"id": "a1", "kind": "A100"}]},
            {
                "id": "zeta",
                "name": "Zeta box",
                "gpus": [{"id": "z0", "kind": "L40S"}, {"id": "z1"}],
            },
            {"id": "newbie", "name": "New", "gpus": [{"id": "n0", "kind": "H200"}]},
        ]
    }
    write_config(path, changed)
    response = client.post("/api/reload_config")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    assert response.json() == {"status": "ok"}
    nodes = client.get("/api/nodes").json()["nodes"]
    assert [n["id"] for n in nodes] == ["alpha", "zeta", "newbie"]
    assert nodes[0]["gpu_count"] == 2
    assert booked(client, node_id="newbie", gpu_ids=["n0"])["gpu_ids"] == ["n0"]
    assert_error(
        client.get("/api/availability", params={"node_id": "empty"}), 400, "Unknown node id 'empty'"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        {"nodes": []},
        {"nodes": [{"id": "", "gpus": []}]},
        {"nodes": [{"id": "x", "gpus": []}, {"id": "x", "gpus": []}]},
        {"nodes": [{"id": "x", "gpus": [{"id": ""}]}]},
        {"nodes": [{"id": "x", "gpus": [{"id": "g"}]}, {"id": "y", "gpus": [{"id": "g"}]}]},
        {"nodes": "alpha"},
        ["alpha"],
    ],
)
def test_reload_config_bad_file_is_400_and_changes_nothing(
    configured: tuple[TestClient, Path, Composed], bad: Any
) -> None:
    client, path, _ = configured
    created = booked(client, node_id="zeta", gpu_ids=["z1"])
    before = client.get("/api/nodes").json()
    write_config(path, bad)
    assert_error(client.post("/api/reload_config"), 400)
    assert client.get("/api/nodes").json() == before
    assert client.get(f"/api/v1/bookings/{created['booking_id']}").json()["status"] == "active"
    assert_error(
        book(client, node_id="zeta", gpu_ids=["z1"]),
        400,
        "GPU 'z1' is already booked for the requested window",
    )


def test_reload_config_missing_file_is_400(configured: tuple[TestClient, Path, Composed]) -> None:
    client, path, _ = configured
    before = client.get("/api/nodes").json()
    path.unlink()
    assert_error(client.post("/api/reload_config"), 400)
    assert client.get("/api/nodes").json() == before


def test_reload_config_retires_removed_gpu_and_keeps_history(
    configured: tuple[TestClient, Path, Composed],
) -> None:
    client, path, _ = configured
    created = booked(client, node_id="zeta", gpu_ids=["z1"], start=ts(24, 8), end=ts(24, 12))
    write_config(
        path,
        {"nodes": [{"id": "zeta", "name": "Zeta box", "gpus": [{"id": "z0", "kind": "L40S"}]}]},
    )
    assert client.post("/api/reload_config").status_code == 200
    nodes = client.get("/api/nodes").json()["nodes"]
    assert nodes == [
        {"id": "zeta", "name": "Zeta box", "gpu_count": 1, "gpus": [{"id": "z0", "kind": "L40S"}]}
    ]
    native = client.get(f"/api/v1/bookings/{created['booking_id']}")
    assert native.status_code == 200
    assert native.json()["gpu_ids"] == ["z1"]
    assert native.json()["node_id"] == "zeta"
    grid = avail(client, "zeta", start="2026-11-24T00:00:00Z", end="2026-11-25T00:00:00Z")
    assert [row["gpu"]["id"] for row in grid["grid"]["rows"]] == ["z0"]
    assert_error(
        book(client, node_id="zeta", gpu_ids=["z1"]),
        400,
        "One or more GPUs do not belong to the specified node",
    )
    # Putting the GPU back revives it with its booking still holding the window.
    write_config(path, INITIAL_CONFIG)
    assert client.post("/api/reload_config").status_code == 200
    assert_error(
        book(client, node_id="zeta", gpu_ids=["z1"], start=ts(24, 8), end=ts(24, 12)),
        400,
        "GPU 'z1' is already booked for the requested window",
    )


def test_reload_config_without_config_file_is_a_json_error(client: TestClient) -> None:
    response = client.post("/api/reload_config")
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert [n["id"] for n in client.get("/api/nodes").json()["nodes"]] == DEMO_NODES


# ------------------------------------------------------------------------- errors and methods


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/book"),
        ("GET", "/api/book"),
        ("GET", "/api/mark_done"),
        ("PATCH", "/api/mark_done"),
        ("POST", "/api/nodes"),
        ("DELETE", "/api/availability"),
        ("GET", "/api/availability_bulk"),
        ("GET", "/api/reload_config"),
        ("PUT", "/api/bookings/1"),
        ("GET", "/api/bookings/1"),
    ],
)
def test_unsupported_method_is_json_405(client: TestClient, method: str, path: str) -> None:
    assert_error(client.request(method, path), 405)


@pytest.mark.parametrize("path", ["/api/nope", "/api/nodes/extra", "/api/v0/bookings"])
def test_unknown_api_path_is_json_404(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 404)


# ------------------------------------------------------------------------------ static files


@pytest.fixture
def web_client(tmp_path: Path, sqlite_url: str) -> Iterator[TestClient]:
    (tmp_path / "secret.txt").write_text("TOP-SECRET", encoding="utf-8")
    web = tmp_path / "web"
    (web / "css").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>ProcPlan</title>", encoding="utf-8")
    (web / "css" / "app.css").write_text("body{}", encoding="utf-8")
    (web / "app.js").write_text("console.log(1)", encoding="utf-8")
    built = compose(
        Settings(db_url=sqlite_url, demo=True, web_root=web), clock=FakeClock(FIXED_NOW)
    )
    with admin_client(built) as test_client:
        yield test_client
    built.store.dispose()


def test_static_root_serves_html(web_client: TestClient) -> None:
    response = web_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>ProcPlan</title>" in response.text
    css = web_client.get("/css/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = web_client.get("/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    # The API still wins over the static mount.
    assert web_client.get("/api/nodes").headers["content-type"] == JSON_TYPE


@pytest.mark.parametrize(
    "path",
    [
        "/..%2f..%2fetc/passwd",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/css/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
    ],
)
def test_static_path_escape_is_refused(web_client: TestClient, path: str) -> None:
    response = web_client.get(path)
    assert response.status_code in (400, 403, 404), response.status_code
    assert "TOP-SECRET" not in response.text
    assert "root:" not in response.text


def test_path_escape_on_default_app(client: TestClient) -> None:
    response = client.get("/..%2f..%2fetc/passwd")
    assert response.status_code in (400, 403, 404)
    assert "root:" not in response.text


@pytest.mark.skipif(
    not (DEFAULT_WEB_ROOT / "index.html").is_file(),
    reason="the packaged web UI (src/procplan/web/index.html) is not there yet",
)
def test_packaged_web_ui_is_served(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_day_grid_clips_overlap_to_the_window(client: TestClient, clock: FakeClock) -> None:
    """A multi-day booking that starts before the window and ends after it: the overlap
    edges of its first and last buckets are the window edges, not the booking's."""
    clock.set(FIXED_NOW - 2 * 24 * HOUR)  # book from the 21st
    created = booked(client, gpu_ids=["node-a-gpu3"], start=ts(21, 20), end=ts(25, 6))
    clock.set(FIXED_NOW)
    body = avail(
        client, start="2026-11-23T00:00:00Z", end="2026-11-24T12:00:00Z", granularity="day"
    )
    slots = body["grid"]["rows"][3]["day_slots"]
    assert [
        (e["id"], e["hours"], e["overlap_start"], e["overlap_end"])
        for slot in slots
        for e in slot["bookings"]
    ] == [
        (created["booking_id"], 24, ts(23), ts(24)),
        (created["booking_id"], 12, ts(24), ts(24, 12)),
    ]
    assert [s["status"] for s in slots] == ["occupied", "occupied"]


@pytest.mark.parametrize("raw", [2**63, str(-(2**63) - 1), "100000000000000000000000"])
def test_ids_beyond_the_database_range_are_404_not_500(client: TestClient, raw: object) -> None:
    message = f"Booking '{int(raw)}' is not active or does not exist"  # type: ignore[call-overload]
    assert_error(client.post("/api/mark_done", json={"booking_id": raw}), 404, message)
    assert_error(client.delete(f"/api/bookings/{raw}"), 404, message)
