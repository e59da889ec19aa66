"""Editing a booking (issue #17, ADR 0024): ``PATCH /api/v1/bookings/{id}`` moves, resizes,
regroups, relabels and reprioritises an active booking; its own claims are not in its way, a
refusal is the 409 a new booking gets, a started booking keeps its start and GPUs.

In-process, on SQLite and on PostgreSQL; clock fixed at Monday 2026-11-23 10:00 UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.api.test_ledger_rules import running
from tests.api.test_native_api import BOOKING_KEYS, assert_v1_error, at, create, created
from tests.conftest import demo_settings

from procplan.server import Composed, compose
from procplan.testing import FakeClock


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def composed(
    request: pytest.FixtureRequest, sqlite_url: str, clock: FakeClock
) -> Iterator[Composed]:
    """The demo cluster in process, once on each store."""
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    built = compose(demo_settings(url), clock=clock)
    yield built
    built.store.dispose()


def patch(client: TestClient, booking_id: int, user: str | None = "alice", **body: Any) -> Any:
    headers = {"X-ProcPlan-User": user} if user else {}
    return client.patch(f"/api/v1/bookings/{booking_id}", json=body, headers=headers)


def edited(client: TestClient, booking_id: int, **body: Any) -> dict[str, Any]:
    response = patch(client, booking_id, **body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def lanes(client: TestClient, day_start: str, day_end: str) -> dict[str, list[tuple[Any, ...]]]:
    """node-a's calendar: GPU id -> (booking id, start, end) of each claim."""
    cal = client.get("/api/v1/calendar", params={"start": day_start, "end": day_end})
    assert cal.status_code == 200, cal.text
    node = next(n for n in cal.json()["nodes"] if n["id"] == "node-a")
    return {
        g["id"]: [(c["booking_id"], c["start"], c["end"]) for c in g["claims"]]
        for g in node["gpus"]
    }


DAY = (at(23, 0), at(24, 0))


# ------------------------------------------------------------------------------ moving


def test_move_is_seen_by_the_calendar_and_frees_the_old_place(client: TestClient) -> None:
    booking = created(client)  # node-a-gpu0, 12:00-14:00
    assert lanes(client, *DAY)["node-a-gpu0"] == [(booking["id"], at(23, 12), at(23, 14))]
    moved = edited(client, booking["id"], start=at(23, 15), end=at(23, 17))
    assert list(moved) == BOOKING_KEYS
    assert (moved["start"], moved["end"], moved["gpu_ids"]) == (
        at(23, 15),
        at(23, 17),
        ["node-a-gpu0"],
    )
    assert lanes(client, *DAY)["node-a-gpu0"] == [(booking["id"], at(23, 15), at(23, 17))]
    assert client.get(f"/api/v1/bookings/{booking['id']}").json() == moved
    # The old place is free, the new one is taken.
    created(client, user="bob", start=at(23, 12), end=at(23, 14))
    assert_v1_error(
        create(client, user="carol", start=at(23, 16), end=at(23, 18)), 409, "gpu_conflict"
    )


def test_moving_into_its_own_old_window_is_allowed(client: TestClient) -> None:
    booking = created(client)
    later = edited(client, booking["id"], start=at(23, 13), end=at(23, 15))
    assert (later["start"], later["end"]) == (at(23, 13), at(23, 15))
    earlier = edited(client, booking["id"], start=at(23, 11), end=at(23, 14))
    assert (earlier["start"], earlier["end"]) == (at(23, 11), at(23, 14))
    assert lanes(client, *DAY)["node-a-gpu0"] == [(booking["id"], at(23, 11), at(23, 14))]


def test_resize_the_start_alone(client: TestClient) -> None:
    booking = created(client)
    assert edited(client, booking["id"], start=at(23, 13))["end"] == at(23, 14)
    assert edited(client, booking["id"], start=at(23, 10, 30))["start"] == at(23, 10, 30)


def test_change_gpus(client: TestClient) -> None:
    booking = created(client)
    regrouped = edited(client, booking["id"], gpu_ids=["node-a-gpu2", "node-a-gpu1"])
    assert regrouped["gpu_ids"] == ["node-a-gpu2", "node-a-gpu1"]
    seen = lanes(client, *DAY)
    assert seen["node-a-gpu0"] == []
    assert seen["node-a-gpu1"] == seen["node-a-gpu2"] == [(booking["id"], at(23, 12), at(23, 14))]
    # The same GPUs in another order are no change.
    assert edited(client, booking["id"], gpu_ids=["node-a-gpu1", "node-a-gpu2"])["gpu_ids"] == [
        "node-a-gpu2",
        "node-a-gpu1",
    ]
    created(client, user="bob")  # gpu0 is free again
    listed = client.get("/api/v1/bookings", params={"gpu": "node-a-gpu1"}).json()
    assert [b["id"] for b in listed["bookings"]] == [booking["id"]]


def test_label_and_priority(client: TestClient) -> None:
    booking = created(client)
    changed = edited(client, booking["id"], label="Paper run", priority="high")
    assert (changed["label"], changed["priority"]) == ("Paper run", "high")
    assert (changed["start"], changed["end"]) == (booking["start"], booking["end"])
    assert edited(client, booking["id"], label="")["label"] == "alice"
    assert_v1_error(patch(client, booking["id"], label="x" * 65), 400, "invalid_label")


def test_the_end_only_body_keeps_working(client: TestClient) -> None:
    booking = created(client)
    answer = edited(client, booking["id"], end=at(23, 16))
    assert list(answer) == BOOKING_KEYS and answer["end"] == at(23, 16)


# --------------------------------------------------------------------------- refusals


def test_a_conflict_names_the_holders_and_the_next_free_window(client: TestClient) -> None:
    booking = created(client)
    bobs = created(client, user="bob", start=at(23, 16), end=at(23, 18))
    body = assert_v1_error(
        patch(client, booking["id"], start=at(23, 15), end=at(23, 17)), 409, "gpu_conflict"
    )
    assert [h["id"] for h in body["holders"]] == [bobs["id"]]
    assert body["holders"][0]["user"] == "bob"
    assert body["next_free"] == {"start": at(23, 18), "end": at(23, 20), "gpu_ids": ["node-a-gpu0"]}
    assert "node-a-gpu0" in body["error"] and "next free" in body["error"]
    # GPUs held by someone else in the window are refused too; nothing changed.
    created(client, user="bob", gpu_ids=["node-a-gpu1"])
    assert_v1_error(
        patch(client, booking["id"], gpu_ids=["node-a-gpu0", "node-a-gpu1"]), 409, "gpu_conflict"
    )
    assert client.get(f"/api/v1/bookings/{booking['id']}").json() == booking


def test_a_started_booking_keeps_its_start_and_gpus(client: TestClient, clock: FakeClock) -> None:
    booking = created(client, start=at(23, 10), end=at(23, 14))
    clock.advance(30 * 60)
    body = assert_v1_error(patch(client, booking["id"], start=at(23, 11)), 409, "started")
    assert body["error"] == (
        f"Booking {booking['id']} has started; only its end, label and priority can change"
    )
    assert_v1_error(patch(client, booking["id"], gpu_ids=["node-a-gpu1"]), 409, "started")
    # The same values are no change; end, label and priority may change.
    same = edited(client, booking["id"], start=at(23, 10), gpu_ids=["node-a-gpu0"], end=at(23, 15))
    assert same["end"] == at(23, 15)
    assert edited(client, booking["id"], label="L", priority="low")["priority"] == "low"
    assert_v1_error(patch(client, booking["id"], end=at(23, 10, 15)), 400)  # ended already


def test_owner_or_admin_only(
    composed: Composed, client: TestClient, alice: TestClient, bob: TestClient
) -> None:
    booking = alice.post(
        "/api/v1/bookings",
        json={
            "node_id": "node-a",
            "gpu_ids": ["node-a-gpu0"],
            "start": at(23, 12),
            "end": at(23, 14),
        },
    ).json()["booking"]
    assert_v1_error(patch(bob, booking["id"], user=None, label="mine"), 403)
    assert patch(alice, booking["id"], user=None, label="A").json()["label"] == "A"
    assert patch(client, booking["id"], user=None, label="by admin").json()["label"] == "by admin"
    entries = client.get("/api/v1/audit").json()["entries"]
    changes = {(e["actor"], e["detail"]) for e in entries if e["action"] == "booking.change"}
    assert changes == {("alice", "label=A"), ("tester", "label=by admin")}


def test_inactive_or_unknown_is_404(client: TestClient) -> None:
    booking = created(client)
    assert_v1_error(patch(client, 999, label="x"), 404)
    client.post(f"/api/v1/bookings/{booking['id']}/cancel")
    assert_v1_error(patch(client, booking["id"], label="x"), 404)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, None),
        ({"end": None}, None),
        ({"gpu_ids": []}, None),
        ({"label": "x", "node_id": "node-b"}, None),
        ({"priority": "urgent"}, "invalid_priority"),
        ({"start": at(23, 14)}, "invalid_window"),
        ({"start": at(23, 13), "end": at(23, 12, 30)}, "invalid_window"),
        ({"start": "2026-11-23T12:00:30Z"}, "misaligned"),
        ({"start": at(23, 7), "end": at(23, 8)}, "start_in_past"),
        ({"end": "2026-12-25T12:00:00Z"}, "too_long"),
        ({"gpu_ids": ["node-b-gpu0"]}, "gpu_not_in_node"),
        ({"gpu_ids": ["node-a-gpu1", "node-a-gpu1"]}, "duplicate_gpu"),
        ({"start": "never"}, None),
    ],
)
def test_invalid_edits_are_400_like_create(
    client: TestClient, body: dict[str, Any], code: str | None
) -> None:
    booking = created(client)
    assert_v1_error(patch(client, booking["id"], **body), 400, code)
    assert client.get(f"/api/v1/bookings/{booking['id']}").json() == booking


def test_a_drained_node_refuses_moves_but_not_shrinking(client: TestClient) -> None:
    booking = created(client)
    assert client.post("/api/v1/nodes/node-a/drain", json={"reason": "driver"}).status_code == 200
    assert_v1_error(patch(client, booking["id"], start=at(23, 11)), 409, "node_draining")
    assert_v1_error(
        patch(client, booking["id"], gpu_ids=["node-a-gpu0", "node-a-gpu1"]), 409, "node_draining"
    )
    assert edited(client, booking["id"], end=at(23, 13), label="short")["end"] == at(23, 13)
    assert edited(client, booking["id"], gpu_ids=["node-a-gpu0"], end=at(23, 15))["end"] == at(
        23, 15
    )


# ------------------------------------------------------------------- jobs (rule 4)


def gpu0_booked(client: TestClient) -> dict[str, Any]:
    """The client's booking of node-a's GPU 0, 12:00 to 14:00 on the 23rd."""
    window = {"start": at(23, 12), "end": at(23, 14)}
    made = client.post(
        "/api/v1/bookings", json={"node_id": "node-a", "gpu_ids": ["node-a-gpu0"], **window}
    )
    assert made.status_code == 201, made.text
    booking: dict[str, Any] = made.json()["booking"]
    return booking


@pytest.mark.usefixtures("workstation")
def test_new_claims_over_open_ended_jobs_are_reported(
    composed: Composed, alice: TestClient, bob: TestClient
) -> None:
    booking = gpu0_booked(alice)
    job = running(composed, bob, name="open", gpu_count=3)
    answer = patch(
        alice, booking["id"], user=None, gpu_ids=["node-a-gpu0", job["allocated_gpus"][0]]
    )
    assert answer.status_code == 200, answer.text
    (conflict,) = answer.json()["conflicts_with_jobs"]
    assert conflict["job_id"] == job["id"] and conflict["gpu_ids"] == [job["allocated_gpus"][0]]
    assert conflict["preempt_at"] == at(23, 12)
    # Its label changes without a word about jobs it already covered.
    assert "conflicts_with_jobs" not in patch(alice, booking["id"], user=None, label="L").json()


@pytest.mark.usefixtures("workstation")
def test_new_claims_over_time_limited_jobs_are_refused(
    composed: Composed, alice: TestClient, bob: TestClient
) -> None:
    booking = gpu0_booked(alice)
    job = running(composed, bob, gpu_count=3, time_limit_s=4 * 3600)
    body = assert_v1_error(
        patch(alice, booking["id"], user=None, gpu_ids=[job["allocated_gpus"][0]]),
        409,
        "job_conflict",
    )
    assert f"job {job['id']}" in body["error"] and body["holders"][0]["kind"] == "job"
    assert body["next_free"]["start"] == at(23, 14)
