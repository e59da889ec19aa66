"""Weekly recurring bookings (issue #17): ``repeat: {"every": "week", "until": <date>}``
books every occurrence in one transaction, all or nothing; ``dry_run`` lists them first."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient
from tests.api.test_native_api import assert_v1_error, at, create, created

WEEKLY = {"every": "week", "until": "2026-12-07"}  # Mondays 23 Nov, 30 Nov, 7 Dec


def listed(client: TestClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.get("/api/v1/bookings", params={"limit": 100}).json()[
        "bookings"
    ]
    return rows


def test_a_weekly_series_is_booked_whole(client: TestClient) -> None:
    answer = create(client, repeat=WEEKLY)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    starts = [b["start"] for b in body["bookings"]]
    assert starts == [at(23, 12), "2026-11-30T12:00:00+00:00", "2026-12-07T12:00:00+00:00"]
    assert body["booking"] == body["bookings"][0] and body["conflicts"] == []
    assert all(b["id"] > 0 and b["status"] == "active" for b in body["bookings"])
    assert len(listed(client)) == 3
    # /bookings/check with a repeat previews the series (here: every week now refused).
    payload = {"node_id": "node-a", "gpu_ids": ["node-a-gpu0"], "repeat": WEEKLY}
    check = client.post(
        "/api/v1/bookings/check", json={**payload, "start": at(23, 12), "end": at(23, 14)}
    )
    assert check.status_code == 200 and len(check.json()["conflicts"]) == 3


def test_one_conflict_books_nothing_and_lists_every_refusal(client: TestClient) -> None:
    created(client, user="bob", start="2026-11-30T13:00:00+00:00", end="2026-11-30T15:00:00+00:00")
    created(client, user="bob", start="2026-12-07T11:00:00+00:00", end="2026-12-07T12:30:00+00:00")
    preview = create(client, repeat=WEEKLY, dry_run=True)
    assert preview.status_code == 200, preview.text
    seen = preview.json()
    assert [b["id"] for b in seen["bookings"]] == [0]  # only 23 Nov would go through
    assert [c["start"] for c in seen["conflicts"]] == [
        "2026-11-30T12:00:00+00:00",
        "2026-12-07T12:00:00+00:00",
    ]
    assert all(c["code"] == "gpu_conflict" and c["next_free"] for c in seen["conflicts"])
    refused = create(client, repeat=WEEKLY)
    body = refused.json()
    assert refused.status_code == 409 and body["code"] == "series_conflict", body
    assert "2 of 3" in body["error"] and body["conflicts"] == seen["conflicts"]
    assert len(listed(client)) == 2  # bob's two: none of the series was written


def test_series_limits_are_400(client: TestClient) -> None:
    far = create(client, repeat={"every": "week", "until": "2028-01-01"})
    assert_v1_error(far, 400, "too_many_occurrences")
    long = create(client, end="2026-12-01T12:00:00+00:00", repeat=WEEKLY)
    assert_v1_error(long, 400, "invalid_repeat")
    assert_v1_error(create(client, repeat={"every": "day", "until": "2026-12-07"}), 400)
    assert_v1_error(create(client, dry_run=True), 400)
    assert listed(client) == []
