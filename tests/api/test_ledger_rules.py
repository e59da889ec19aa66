"""Ledger rules 4 and 5 through the API. Rule 4: a booking over GPUs a job holds now is refused
unless the job is open-ended (the answer lists it in ``conflicts_with_jobs``: rule 3 preempts it
when the booking begins) or is the booking owner's own. Rule 5: a booked job that ends, when its
owner asked for it, ends the booking too."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import FIXED_NOW

from procplan.core.timeutil import to_iso
from procplan.server import Composed

pytestmark = pytest.mark.usefixtures("workstation")

HOUR = 3600
NODE = "node-a"  # 4 GPUs in the demo


def running(composed: Composed, client: TestClient, **fields: Any) -> dict[str, Any]:
    """A job of ``client``'s user on all of node-a's GPUs, started by one cycle."""
    body = {"command": ["train"], "gpu_count": 4, "node_id": NODE, **fields}
    made = client.post("/api/v1/jobs", json=body)
    assert made.status_code == 201, made.text
    composed.scheduler.run_once()
    job: dict[str, Any] = client.get(f"/api/v1/jobs/{made.json()['job_id']}").json()
    assert job["state"] == "running", job
    return job


def book(client: TestClient, **gpus: Any) -> Any:
    window = {"start": to_iso(FIXED_NOW + HOUR), "end": to_iso(FIXED_NOW + 3 * HOUR)}
    body = {"node_id": NODE, **window, **(gpus or {"gpu_count": 2})}
    return client.post("/api/v1/bookings", json=body)


def test_a_booking_over_an_open_ended_job_says_it_will_preempt_it(
    composed: Composed, alice: TestClient, bob: TestClient
) -> None:
    job = running(composed, bob, name="open")
    made = book(alice)
    assert made.status_code == 201, made.text
    booking = made.json()["booking"]
    (conflict,) = made.json()["conflicts_with_jobs"]
    assert conflict["job_id"] == job["id"] and conflict["user"] == "bob"
    assert conflict["claim_end"] is None and conflict["kind"] == "batch"
    assert sorted(conflict["gpu_ids"]) == sorted(booking["gpu_ids"])
    assert conflict["preempt_at"] == booking["start"]
    assert "requeued" in conflict["action"] and "SIGTERM" in conflict["action"]


def test_a_booking_over_a_time_limited_job_is_refused(
    composed: Composed, alice: TestClient, bob: TestClient
) -> None:
    job = running(composed, bob, time_limit_s=4 * HOUR)
    by_count = book(alice)
    assert by_count.status_code == 409 and by_count.json()["code"] == "no_free_gpus"
    named = book(alice, gpu_ids=[job["allocated_gpus"][0]])
    assert named.status_code == 409 and named.json()["code"] == "job_conflict"
    assert f"job {job['id']}" in named.json()["error"]


def test_the_owners_own_jobs_are_no_conflict(composed: Composed, alice: TestClient) -> None:
    running(composed, alice, name="mine")
    made = book(alice)
    assert made.status_code == 201 and made.json()["conflicts_with_jobs"] == []


def check(client: TestClient, **gpus: Any) -> Any:
    window = {"start": to_iso(FIXED_NOW + HOUR), "end": to_iso(FIXED_NOW + 3 * HOUR)}
    body = {"node_id": NODE, **window, **(gpus or {"gpu_count": 2})}
    return client.post("/api/v1/bookings/check", json=body)


def test_check_says_what_booking_would_do_and_books_nothing(
    composed: Composed, alice: TestClient, bob: TestClient
) -> None:
    job = running(composed, bob, name="open")
    before = alice.get("/api/v1/bookings").json()["total"]
    preview = check(alice)
    assert preview.status_code == 200, preview.text
    answer = preview.json()
    assert answer["user"] == "alice" and answer["node_id"] == NODE
    assert answer["start"] == to_iso(FIXED_NOW + HOUR) and len(answer["gpu_ids"]) == 2
    (conflict,) = answer["conflicts_with_jobs"]
    assert conflict["job_id"] == job["id"] and conflict["preempt_at"] == answer["start"]
    assert alice.get("/api/v1/bookings").json()["total"] == before
    # Booking the same request takes the GPUs the check named and reports the same job.
    made = book(alice)
    assert made.json()["booking"]["gpu_ids"] == answer["gpu_ids"]
    assert made.json()["conflicts_with_jobs"] == answer["conflicts_with_jobs"]


def test_check_answers_the_refusal_booking_would_get(
    composed: Composed, alice: TestClient, bob: TestClient
) -> None:
    job = running(composed, bob, time_limit_s=4 * HOUR)
    for gpus in ({}, {"gpu_ids": [job["allocated_gpus"][0]]}):
        refused, would = check(alice, **gpus), book(alice, **gpus)
        assert refused.status_code == would.status_code == 409
        assert refused.json() == would.json()


def test_check_needs_a_user(anon: TestClient) -> None:
    assert check(anon).status_code == 401


def booked_now(client: TestClient) -> dict[str, Any]:
    """Two of node-a's GPUs from now for four hours."""
    window = {"start": to_iso(FIXED_NOW), "end": to_iso(FIXED_NOW + 4 * HOUR)}
    made = client.post("/api/v1/bookings", json={"node_id": NODE, "gpu_count": 2, **window})
    assert made.status_code == 201, made.text
    booking: dict[str, Any] = made.json()["booking"]
    return booking


def on_booking(
    composed: Composed, client: TestClient, booking: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    body = {"command": ["eval"], "gpu_count": 1, "booking_id": booking["id"], **fields}
    made = client.post("/api/v1/jobs", json=body)
    assert made.status_code == 201, made.text
    composed.scheduler.run_once()
    job: dict[str, Any] = client.get(f"/api/v1/jobs/{made.json()['job_id']}").json()
    return job


def test_a_booked_job_ending_releases_its_booking_when_asked(
    composed: Composed, alice: TestClient
) -> None:
    booking = booked_now(alice)
    job = on_booking(composed, alice, booking, release_booking=True)
    assert job["state"] == "running" and set(job["allocated_gpus"]) <= set(booking["gpu_ids"])
    composed.bookings.clock.advance(30 * 60 + 5)  # type: ignore[attr-defined]
    assert alice.post(f"/api/v1/jobs/{job['id']}/release", json={"exit_code": 0}).status_code == 200
    after = alice.get(f"/api/v1/bookings/{booking['id']}").json()
    assert after["status"] == "completed"
    assert after["end"] == to_iso(FIXED_NOW + 31 * 60)  # now, rounded up to the minute


def test_without_asking_or_while_the_booking_has_work_it_stays(
    composed: Composed, alice: TestClient
) -> None:
    booking = booked_now(alice)
    plain = on_booking(composed, alice, booking)
    alice.post(f"/api/v1/jobs/{plain['id']}/release", json={"exit_code": 0})
    assert alice.get(f"/api/v1/bookings/{booking['id']}").json()["status"] == "active"
    first = on_booking(composed, alice, booking, release_booking=True)
    second = on_booking(composed, alice, booking, release_booking=True)
    alice.post(f"/api/v1/jobs/{first['id']}/release", json={"exit_code": 0})
    assert alice.get(f"/api/v1/bookings/{booking['id']}").json()["status"] == "active"
    alice.post(f"/api/v1/jobs/{second['id']}/release", json={"exit_code": 1})
    assert alice.get(f"/api/v1/bookings/{booking['id']}").json()["status"] == "completed"


def test_release_booking_needs_a_booking(alice: TestClient) -> None:
    refused = alice.post("/api/v1/jobs", json={"command": ["x"], "release_booking": True})
    assert refused.status_code == 400 and "booking_id" in refused.json()["error"]
