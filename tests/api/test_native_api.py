"""The native ``/api/v1`` API: bookings (minute precision, 409 conflicts, extend, release,
cancel), nodes, the compact calendar, health and OpenAPI; every error carries a ``code``.

In-process (``client`` fixture: demo topology, clock fixed at Monday 2026-11-23 10:00 UTC).
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.conftest import TEST_ADMIN

from procplan.testing import FakeClock

# The demo topology plus the server's own host (named "workstation" by tests/conftest.py).
DEMO_NODES = ["node-a", "node-b", "workstation"]

JSON_TYPE = "application/json; charset=utf-8"
USER = {"X-ProcPlan-User": "alice"}
BOOKING_KEYS = [
    "id",
    "node_id",
    "gpu_ids",
    "start",
    "end",
    "user",
    "label",
    "priority",
    "status",
    "created_at",
]
NOW_ISO = "2026-11-23T10:00:00+00:00"
CORE_KEYS = ["error", "status", "code"]
CONFLICT_KEYS = ["holders", "next_free"]


def at(day: int, hour: int, minute: int = 0) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00+00:00"


def assert_v1_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Native error body: ``error``, ``status`` and ``code``; JSON; never 422/500."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    keys = list(body.keys())
    # A refused booking adds who is in the way and the next free window (issue #17).
    assert keys in (["error", "status", "code"], [*CORE_KEYS, *CONFLICT_KEYS]), body
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["code"], str) and body["code"]
    if code is not None:
        assert body["code"] == code, body
    return body


def create(client: TestClient, user: str | None = "alice", **fields: Any) -> Any:
    payload: dict[str, Any] = {
        "node_id": "node-a",
        "start": at(23, 12),
        "end": at(23, 14),
    }
    payload.update(fields)
    if "gpu_ids" not in payload and "gpu_count" not in payload:
        payload["gpu_ids"] = ["node-a-gpu0"]
    payload = {k: v for k, v in payload.items() if v is not None}
    headers = {"X-ProcPlan-User": user} if user else {}
    return client.post("/api/v1/bookings", json=payload, headers=headers)


def created(client: TestClient, user: str | None = "alice", **fields: Any) -> dict[str, Any]:
    response = create(client, user, **fields)
    assert response.status_code == 201, response.text
    booking: dict[str, Any] = response.json()["booking"]
    return booking


# ----------------------------------------------------------------------------------- create


def test_create_by_gpu_ids(client: TestClient) -> None:
    response = create(client, gpu_ids=["node-a-gpu1", "node-a-gpu0"], priority="HIGH")
    assert response.status_code == 201
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert list(body.keys()) == ["booking", "conflicts_with_jobs"]
    assert body["conflicts_with_jobs"] == []
    booking = body["booking"]
    assert list(booking.keys()) == BOOKING_KEYS
    assert booking == {
        "id": booking["id"],
        "node_id": "node-a",
        "gpu_ids": ["node-a-gpu1", "node-a-gpu0"],
        "start": at(23, 12),
        "end": at(23, 14),
        "user": "alice",
        "label": "alice",
        "priority": "high",
        "status": "active",
        "created_at": NOW_ISO,
    }


def test_create_by_gpu_count_picks_free_gpus(client: TestClient) -> None:
    created(client, gpu_ids=["node-b-gpu0", "node-b-gpu1"], node_id="node-b")
    booking = created(client, node_id="node-b", gpu_count=3)
    assert len(booking["gpu_ids"]) == 3
    assert not {"node-b-gpu0", "node-b-gpu1"} & set(booking["gpu_ids"])
    # Best fit keeps the result in config order.
    assert booking["gpu_ids"] == sorted(booking["gpu_ids"], key=lambda g: int(g[10:]))


def test_create_with_duration_and_minute_precision(client: TestClient) -> None:
    booking = created(
        client, start="2026-11-23T10:15:00Z", end=None, duration_minutes=95, label="  training run "
    )
    assert (booking["start"], booking["end"]) == (at(23, 10, 15), at(23, 11, 50))
    assert booking["label"] == "training run"
    other = created(client, start="2026-11-23T11:50:00Z", end="2026-11-23T12:05:00Z")
    assert other["start"] == at(23, 11, 50)
    assert_v1_error(
        create(client, start="2026-11-23T11:49:00Z", end="2026-11-23T11:51:00Z"),
        409,
        "gpu_conflict",
    )


def test_create_rejects_seconds(client: TestClient) -> None:
    response = create(client, start="2026-11-23T12:00:30Z")
    body = assert_v1_error(response, 400, "misaligned")
    assert "minute" in body["error"]


def test_create_user_from_header_or_body(client: TestClient) -> None:
    assert created(client, user="bob")["user"] == "bob"
    payload = {
        "node_id": "node-a",
        "start": at(23, 12),
        "end": at(23, 14),
        "gpu_ids": ["node-a-gpu1"],
        "user": "carol",
    }
    response = client.post("/api/v1/bookings", json=payload, headers={"X-ProcPlan-User": "bob"})
    assert response.status_code == 201, response.text
    from_body = response.json()["booking"]
    assert (from_body["user"], from_body["label"]) == ("carol", "carol")


def test_a_booking_without_user_is_the_signed_in_users(client: TestClient) -> None:
    assert create(client, user=None).json()["booking"]["user"] == TEST_ADMIN


def test_create_conflict_is_409_with_code(client: TestClient) -> None:
    first = created(client, gpu_ids=["node-a-gpu0", "node-a-gpu1"])
    body = assert_v1_error(
        create(client, user="bob", gpu_ids=["node-a-gpu1"], start=at(23, 13), end=at(23, 15)),
        409,
        "gpu_conflict",
    )
    assert "node-a-gpu1" in body["error"]
    created(client, gpu_count=2)  # gpu2 + gpu3
    assert_v1_error(create(client, gpu_count=1), 409, "no_free_gpus")
    listed = client.get("/api/v1/bookings").json()
    assert listed["total"] == 2 and first["id"] in [b["id"] for b in listed["bookings"]]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"node_id": "ghost"}, "unknown_node"),
        ({"priority": "urgent"}, "invalid_priority"),
        ({"end": at(23, 12)}, "invalid_window"),
        ({"start": at(23, 8)}, "start_in_past"),
        ({"start": at(24, 0), "end": "2026-12-25T00:01:00Z"}, "too_long"),
        ({"gpu_ids": ["node-a-gpu0", "node-a-gpu0"]}, "duplicate_gpu"),
        ({"gpu_ids": ["node-b-gpu0"]}, "gpu_not_in_node"),
        ({"gpu_ids": None, "gpu_count": 5}, "not_enough_gpus"),
        ({"gpu_ids": None}, "no_gpu_selection"),
        ({"label": "x" * 65}, "invalid_label"),
        ({"end": at(23, 14), "duration_minutes": 60}, None),
        ({"end": None}, None),
        ({"gpu_ids": None, "gpu_count": "2"}, None),
        ({"gpu_ids": None, "gpu_count": 1.5}, None),
        ({"gpu_ids": None, "gpu_count": True}, None),
        ({"gpu_ids": None, "gpu_count": 0}, None),
        ({"end": None, "duration_minutes": 0}, None),
        ({"end": None, "duration_minutes": 30.5}, None),
        ({"node_id": None}, None),
        ({"node_id": ""}, None),
        ({"start": None}, None),
        ({"start": "soon"}, None),
        ({"end": "later"}, None),
        ({"gpu_ids": "node-a-gpu0"}, None),
        ({"surprise": 1}, None),
    ],
)
def test_create_validation_is_400_with_code(
    client: TestClient, changes: dict[str, Any], code: str | None
) -> None:
    payload: dict[str, Any] = {
        "node_id": "node-a",
        "start": at(23, 12),
        "end": at(23, 14),
        "gpu_ids": ["node-a-gpu0"],
    }
    payload.update(changes)
    payload = {k: v for k, v in payload.items() if v is not None}
    response = client.post("/api/v1/bookings", json=payload, headers=USER)
    assert_v1_error(response, 400, code)
    assert client.get("/api/v1/bookings").json()["total"] == 0


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b"null", b'"x"'])
def test_create_bad_body_is_400(client: TestClient, content: bytes) -> None:
    response = client.post(
        "/api/v1/bookings",
        content=content,
        headers={**USER, "content-type": "application/json"},
    )
    assert_v1_error(response, 400)


# --------------------------------------------------------------------------------- list/get


@pytest.fixture
def listed_scene(client: TestClient, clock: FakeClock) -> dict[str, int]:
    ids = {
        "a1": created(client, "alice", gpu_ids=["node-a-gpu0"], start=at(23, 12), end=at(23, 14)),
        "a2": created(
            client,
            "alice",
            node_id="node-b",
            gpu_ids=["node-b-gpu3"],
            start=at(24, 8),
            end=at(24, 10),
        ),
        "b1": created(
            client, "bob", gpu_ids=["node-a-gpu1", "node-a-gpu0"], start=at(25, 0), end=at(25, 6)
        ),
        "b2": created(
            client,
            "bob",
            node_id="node-b",
            gpu_ids=["node-b-gpu0"],
            start=at(23, 9),
            end=at(23, 11),
        ),
        "c1": created(client, "carol", gpu_ids=["node-a-gpu2"], start=at(23, 11), end=at(23, 13)),
    }
    out = {key: value["id"] for key, value in ids.items()}
    assert client.post(f"/api/v1/bookings/{out['c1']}/cancel").status_code == 200
    clock.advance(30 * 60)
    assert client.post(f"/api/v1/bookings/{out['b2']}/release").status_code == 200
    clock.set(1_795_428_000)
    return out


def list_ids(client: TestClient, **params: str) -> list[int]:
    response = client.get("/api/v1/bookings", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body.keys()) == ["bookings", "total"]
    for booking in body["bookings"]:
        assert list(booking.keys()) == BOOKING_KEYS
    return [b["id"] for b in body["bookings"]]


def test_list_newest_first_and_total(client: TestClient, listed_scene: dict[str, int]) -> None:
    s = listed_scene
    assert list_ids(client) == [s["b1"], s["a2"], s["a1"], s["c1"], s["b2"]]
    page = client.get("/api/v1/bookings", params={"limit": 2, "offset": 1}).json()
    assert [b["id"] for b in page["bookings"]] == [s["a2"], s["a1"]]
    assert page["total"] == 5


def test_list_filters(client: TestClient, listed_scene: dict[str, int]) -> None:
    s = listed_scene
    assert list_ids(client, node="node-b") == [s["a2"], s["b2"]]
    assert list_ids(client, gpu="node-a-gpu0") == [s["b1"], s["a1"]]
    assert list_ids(client, gpu="node-a-gpu1") == [s["b1"]]
    assert list_ids(client, gpu="node-a-gpu3") == []
    assert list_ids(client, user="bob") == [s["b1"], s["b2"]]
    assert list_ids(client, user="nobody") == []
    assert list_ids(client, status="active") == [s["b1"], s["a2"], s["a1"]]
    assert list_ids(client, status="CANCELLED") == [s["c1"]]
    assert list_ids(client, status="completed") == [s["b2"]]
    # Window: bookings overlapping [start, end) (half-open: touching is not overlapping).
    assert list_ids(client, start="2026-11-23T13:00:00Z", end="2026-11-24T09:00:00Z") == [
        s["a2"],
        s["a1"],
    ]
    assert list_ids(client, start="2026-11-23T14:00:00Z", end="2026-11-24T08:00:00Z") == []
    assert list_ids(client, start="2026-11-24T10:00:00Z") == [s["b1"]]
    assert list_ids(client, end="2026-11-23T11:00:00Z") == [s["b2"]]
    # Filters combine.
    assert list_ids(client, user="alice", node="node-a", status="active") == [s["a1"]]
    total = client.get("/api/v1/bookings", params={"user": "bob", "limit": 1}).json()
    assert (len(total["bookings"]), total["total"]) == (1, 2)


def test_released_booking_in_list(client: TestClient, listed_scene: dict[str, int]) -> None:
    booking = client.get(f"/api/v1/bookings/{listed_scene['b2']}").json()
    assert (booking["status"], booking["end"]) == ("completed", at(23, 10, 30))


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "done"}, "invalid_status"),
        ({"start": "yesterday"}, None),
        ({"end": "2026-11-31"}, None),
        ({"limit": "0"}, None),
        ({"limit": "1001"}, None),
        ({"limit": "many"}, None),
        ({"offset": "-1"}, None),
    ],
)
def test_list_bad_parameters_are_400(
    client: TestClient, params: dict[str, str], code: str | None
) -> None:
    assert_v1_error(client.get("/api/v1/bookings", params=params), 400, code)


def test_get_booking_and_404(client: TestClient) -> None:
    booking = created(client)
    response = client.get(f"/api/v1/bookings/{booking['id']}")
    assert response.status_code == 200
    assert response.json() == booking
    body = assert_v1_error(client.get("/api/v1/bookings/999"), 404, "unknown_booking")
    assert "999" in body["error"]
    assert_v1_error(client.get("/api/v1/bookings/abc"), 400)


# ------------------------------------------------------------------------------ patch (end)


def test_patch_extend_and_shorten(client: TestClient) -> None:
    first = created(client, start=at(23, 10), end=at(23, 12))
    created(client, user="bob", start=at(23, 14), end=at(23, 16))

    response = client.patch(f"/api/v1/bookings/{first['id']}", json={"end": at(23, 14)})
    assert response.status_code == 200, response.text
    assert list(response.json().keys()) == BOOKING_KEYS
    assert response.json()["end"] == at(23, 14)

    body = assert_v1_error(
        client.patch(f"/api/v1/bookings/{first['id']}", json={"end": at(23, 14, 1)}),
        409,
        "gpu_conflict",
    )
    assert "node-a-gpu0" in body["error"]
    assert client.get(f"/api/v1/bookings/{first['id']}").json()["end"] == at(23, 14)

    shorter = client.patch(f"/api/v1/bookings/{first['id']}", json={"end": "2026-11-23T11:30Z"})
    assert shorter.status_code == 200
    assert shorter.json()["end"] == at(23, 11, 30)
    # The freed time is bookable, and the ledger follows the new end.
    created(client, user="carol", start=at(23, 11, 30), end=at(23, 14))
    assert_v1_error(create(client, user="dave", start=at(23, 11), end=at(23, 11, 31)), 409)


def test_patch_extend_past_the_longest_span_keeps_window_queries_right(client: TestClient) -> None:
    booking = created(client, start=at(23, 12), end=at(23, 13))
    extended = client.patch(f"/api/v1/bookings/{booking['id']}", json={"end": "2026-12-13T12:00Z"})
    assert extended.status_code == 200, extended.text
    cal = client.get(
        "/api/v1/calendar", params={"start": "2026-12-10T00:00Z", "end": "2026-12-11T00:00Z"}
    ).json()
    gpu0 = cal["nodes"][0]["gpus"][0]
    assert [c["booking_id"] for c in gpu0["claims"]] == [booking["id"]]


@pytest.mark.parametrize(
    ("end", "status"),
    [
        (at(23, 12), 400),  # end == start
        (at(23, 11), 400),  # before start
        ("2026-11-23T13:00:30Z", 400),  # not a whole minute
        ("never", 400),
        ("2026-12-25T12:00:01Z", 400),
    ],
)
def test_patch_invalid_end(client: TestClient, end: str, status: int) -> None:
    booking = created(client)
    assert_v1_error(client.patch(f"/api/v1/bookings/{booking['id']}", json={"end": end}), status)
    assert client.get(f"/api/v1/bookings/{booking['id']}").json()["end"] == at(23, 14)


def test_patch_end_in_the_past_is_400(client: TestClient, clock: FakeClock) -> None:
    booking = created(client, start=at(23, 10), end=at(23, 14))
    clock.advance(2 * 3600)  # 12:00
    assert_v1_error(
        client.patch(f"/api/v1/bookings/{booking['id']}", json={"end": at(23, 11)}), 400
    )


def test_patch_errors(client: TestClient) -> None:
    booking = created(client)
    assert_v1_error(client.patch("/api/v1/bookings/999", json={"end": at(23, 15)}), 404)
    assert_v1_error(client.patch(f"/api/v1/bookings/{booking['id']}", json={}), 400)
    assert_v1_error(
        client.patch(f"/api/v1/bookings/{booking['id']}", json={"end": at(23, 15), "x": 1}), 400
    )
    client.post(f"/api/v1/bookings/{booking['id']}/cancel")
    assert_v1_error(
        client.patch(f"/api/v1/bookings/{booking['id']}", json={"end": at(23, 15)}), 404
    )


# ------------------------------------------------------------------------ release and cancel


def test_release_truncates_to_the_next_minute(client: TestClient, clock: FakeClock) -> None:
    booking = created(client, start=at(23, 10), end=at(23, 14))
    clock.advance(7 * 60 + 30)  # 10:07:30
    response = client.post(f"/api/v1/bookings/{booking['id']}/release")
    assert response.status_code == 200
    released = response.json()
    assert list(released.keys()) == BOOKING_KEYS
    assert (released["status"], released["start"], released["end"]) == (
        "completed",
        at(23, 10),
        at(23, 10, 8),
    )
    # The future is free from the next minute on.
    created(client, user="bob", start=at(23, 10, 8), end=at(23, 14))
    assert_v1_error(client.post(f"/api/v1/bookings/{booking['id']}/release"), 404)


def test_release_before_start_is_refused_cancel_instead(client: TestClient) -> None:
    """Issue #17 item 3: releasing a booking that has not begun left a zero-length
    "completed" booking (00:00 -> 00:00); it is refused and the booking stays as it was."""
    booking = created(client, start=at(24, 10), end=at(24, 14))
    body = assert_v1_error(
        client.post(f"/api/v1/bookings/{booking['id']}/release"), 409, "not_started"
    )
    assert "cancel" in body["error"] and "not started" in body["error"]
    unchanged = client.get(f"/api/v1/bookings/{booking['id']}").json()
    assert (unchanged["status"], unchanged["start"], unchanged["end"]) == (
        "active",
        at(24, 10),
        at(24, 14),
    )
    assert create(client, user="bob", start=at(24, 10), end=at(24, 14)).status_code == 409
    assert client.post(f"/api/v1/bookings/{booking['id']}/cancel").status_code == 200
    created(client, user="bob", start=at(24, 10), end=at(24, 14))


def test_release_at_the_start_instant_is_allowed(client: TestClient) -> None:
    booking = created(client, start=at(23, 10), end=at(23, 14))  # now is 10:00 exactly
    released = client.post(f"/api/v1/bookings/{booking['id']}/release")
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "completed"


@pytest.mark.parametrize("how", ["post", "delete"])
def test_cancel(client: TestClient, how: str) -> None:
    booking = created(client)
    path = f"/api/v1/bookings/{booking['id']}"
    response = client.post(path + "/cancel") if how == "post" else client.delete(path)
    assert response.status_code == 200
    cancelled = response.json()
    assert list(cancelled.keys()) == BOOKING_KEYS
    assert (cancelled["status"], cancelled["end"]) == ("cancelled", at(23, 14))
    created(client, user="bob")  # the window is free again
    again = client.post(path + "/cancel") if how == "post" else client.delete(path)
    body = assert_v1_error(again, 404)
    assert str(booking["id"]) in body["error"]


def test_not_found_everywhere_has_a_code(client: TestClient) -> None:
    assert_v1_error(client.post("/api/v1/bookings/4242/release"), 404)
    assert_v1_error(client.post("/api/v1/bookings/4242/cancel"), 404)
    assert_v1_error(client.delete("/api/v1/bookings/4242"), 404)
    assert_v1_error(client.get("/api/v1/bookings/4242"), 404, "unknown_booking")
    assert_v1_error(client.get("/api/v1/no-such-route"), 404, "not_found")
    assert_v1_error(client.post("/api/v1/bookings/abc/release"), 400)


def test_method_not_allowed_has_a_code(client: TestClient) -> None:
    assert_v1_error(client.put("/api/v1/bookings"), 405, "method_not_allowed")
    assert_v1_error(client.get("/api/v1/bookings/1/cancel"), 405, "method_not_allowed")
    assert_v1_error(client.post("/api/v1/nodes"), 405, "method_not_allowed")


# ------------------------------------------------------------------------- nodes / calendar


def test_nodes(client: TestClient) -> None:
    response = client.get("/api/v1/nodes")
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    nodes = response.json()["nodes"]
    assert [n["id"] for n in nodes] == DEMO_NODES
    for node in nodes:
        assert list(node.keys())[:3] == ["id", "name", "gpu_count"]  # then the live fields
        assert node["gpu_count"] == len(node["gpus"])
        for index, gpu in enumerate(node["gpus"]):
            assert {"id", "kind", "index", "uuid", "memory_mb"} <= gpu.keys()
            assert gpu["index"] == index
    identity = ("id", "kind", "index", "uuid", "memory_mb")
    assert {key: nodes[0]["gpus"][1][key] for key in identity} == {
        "id": "node-a-gpu1",
        "kind": "A100",
        "index": 1,
        "uuid": None,
        "memory_mb": None,
    }
    assert (nodes[1]["name"], nodes[1]["gpu_count"]) == ("Demo Node B", 8)


def test_calendar(client: TestClient, clock: FakeClock) -> None:
    two = created(
        client,
        gpu_ids=["node-a-gpu2", "node-a-gpu0"],
        start=at(23, 9),
        end=at(24, 3),
        label="AB",
        priority="high",
    )
    later = created(client, user="bob", gpu_ids=["node-a-gpu0"], start=at(24, 3), end=at(24, 5))
    cancelled = created(client, user="bob", gpu_ids=["node-a-gpu1"])
    client.post(f"/api/v1/bookings/{cancelled['id']}/cancel")
    done = created(
        client,
        user="carol",
        node_id="node-b",
        gpu_ids=["node-b-gpu5"],
        start=at(23, 10),
        end=at(23, 20),
    )
    clock.advance(3600 + 60)
    client.post(f"/api/v1/bookings/{done['id']}/release")  # ends 11:01

    response = client.get(
        "/api/v1/calendar", params={"start": "2026-11-23T10:00:00Z", "end": "2026-11-24T04:00:00Z"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON_TYPE
    cal = response.json()
    assert list(cal.keys()) == ["start", "end", "nodes"]
    assert (cal["start"], cal["end"]) == (at(23, 10), at(24, 4))
    assert [n["id"] for n in cal["nodes"]] == DEMO_NODES
    for node in cal["nodes"]:
        assert list(node.keys()) == ["id", "name", "gpus"]
        for gpu in node["gpus"]:
            assert list(gpu.keys()) == ["id", "kind", "index", "claims"]
    gpus = {g["id"]: g["claims"] for n in cal["nodes"] for g in n["gpus"]}
    expected_two = {
        "booking_id": two["id"],
        "start": at(23, 9),
        "end": at(24, 3),
        "user": "alice",
        "label": "AB",
        "priority": "high",
        "status": "active",
    }
    # One object per booking per GPU, unclipped, in (start, id) order.
    assert gpus["node-a-gpu0"] == [
        expected_two,
        {
            "booking_id": later["id"],
            "start": at(24, 3),
            "end": at(24, 5),
            "user": "bob",
            "label": "bob",
            "priority": "medium",
            "status": "active",
        },
    ]
    for claim in gpus["node-a-gpu0"]:
        assert list(claim.keys()) == [
            "booking_id",
            "start",
            "end",
            "user",
            "label",
            "priority",
            "status",
        ]
    assert gpus["node-a-gpu2"] == [expected_two]
    assert gpus["node-a-gpu1"] == []  # cancelled omitted
    assert gpus["node-a-gpu3"] == []
    assert gpus["node-b-gpu5"] == [
        {
            "booking_id": done["id"],
            "start": at(23, 10),
            "end": at(23, 11, 1),
            "user": "carol",
            "label": "carol",
            "priority": "medium",
            "status": "completed",
        }
    ]

    only_b = client.get(
        "/api/v1/calendar",
        params={
            "start": "2026-11-23T10:00:00Z",
            "end": "2026-11-24T04:00:00Z",
            "node_ids": "node-b",
        },
    ).json()
    assert [n["id"] for n in only_b["nodes"]] == ["node-b"]
    both = client.get(
        "/api/v1/calendar",
        params={
            "start": "2026-11-23T10:00:00Z",
            "end": "2026-11-24T04:00:00Z",
            "node_ids": " node-b , node-a ",
        },
    ).json()
    assert [n["id"] for n in both["nodes"]] == ["node-b", "node-a"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"start": "2026-11-23T00:00Z"}, None),
        ({"end": "2026-11-23T00:00Z"}, None),
        ({"start": "x", "end": "2026-11-23T00:00Z"}, None),
        ({"start": "2026-11-23T00:00Z", "end": "2026-11-22T00:00Z"}, "invalid_window"),
        ({"start": "2026-11-23T00:00:30Z", "end": "2026-11-24T00:00Z"}, "misaligned"),
        ({"start": "2026-01-01T00:00Z", "end": "2027-02-06T00:00Z"}, "window_too_long"),
        (
            {"start": "2026-11-23T00:00Z", "end": "2026-11-24T00:00Z", "node_ids": "ghost"},
            "unknown_node",
        ),
    ],
)
def test_calendar_errors(client: TestClient, params: dict[str, str], code: str | None) -> None:
    assert_v1_error(client.get("/api/v1/calendar", params=params), 400, code)


# ------------------------------------------------------------------------- health and docs


def test_health(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_docs_and_openapi(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    expected = {
        "/api/v1/bookings": {"get", "post"},
        "/api/v1/bookings/{booking_id}": {"get", "patch", "delete"},
        "/api/v1/bookings/{booking_id}/release": {"post"},
        "/api/v1/bookings/{booking_id}/cancel": {"post"},
        "/api/v1/nodes": {"get"},
        "/api/v1/calendar": {"get"},
        "/health": {"get"},
        "/api/nodes": {"get"},
        "/api/availability": {"get"},
        "/api/availability_bulk": {"post"},
        "/api/book": {"post"},
        "/api/mark_done": {"post"},
        "/api/reload_config": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))


@pytest.mark.parametrize("raw", [2**63, -(2**63) - 1, 10**30])
def test_ids_beyond_the_database_range_are_400_not_500(client: TestClient, raw: int) -> None:
    path = f"/api/v1/bookings/{raw}"
    assert_v1_error(client.get(path), 400, "invalid_request")
    assert_v1_error(client.patch(path, json={"end": at(23, 15)}), 400, "invalid_request")
    assert_v1_error(client.post(path + "/release"), 400, "invalid_request")
    assert_v1_error(client.post(path + "/cancel"), 400, "invalid_request")
    assert_v1_error(client.delete(path), 400, "invalid_request")
    assert_v1_error(client.get("/api/v1/bookings", params={"offset": str(abs(raw))}), 400)


def test_largest_storable_id_is_a_plain_404(client: TestClient) -> None:
    assert_v1_error(client.get(f"/api/v1/bookings/{2**63 - 1}"), 404, "unknown_booking")
    assert client.get("/api/v1/bookings", params={"offset": str(2**63 - 1)}).json() == {
        "bookings": [],
        "total": 0,
    }


# ---------------------------------------------- conflicts say who and when next (issue #17)


def test_conflict_names_holders_and_next_free(client: TestClient) -> None:
    first = created(client, user="bob", label="BB", start=at(23, 12), end=at(23, 14))
    created(client, user="bob", start=at(23, 15), end=at(23, 16))
    refused = create(client, start=at(23, 13), end=at(23, 15))  # 2 h: 14-15 is too short
    body = assert_v1_error(refused, 409, "gpu_conflict")
    assert list(body) == [*CORE_KEYS, *CONFLICT_KEYS]
    assert body["holders"] == [
        {
            "gpu_id": "node-a-gpu0",
            "kind": "booking",
            "id": first["id"],
            "user": "bob",
            "label": "BB",
            "start": at(23, 12),
            "end": at(23, 14),
        }
    ]
    assert body["next_free"] == {
        "start": at(23, 16),
        "end": at(23, 18),
        "gpu_ids": ["node-a-gpu0"],
    }
    assert body["error"].startswith("GPU 'node-a-gpu0' is already booked for the requested window")
    assert "bob (BB)" in body["error"] and f"next free: node-a-gpu0 {at(23, 16)}" in body["error"]
    # The preview answers the same refusal, and the suggestion books.
    assert (
        client.post(
            "/api/v1/bookings/check",
            json={
                "node_id": "node-a",
                "gpu_ids": ["node-a-gpu0"],
                "start": at(23, 13),
                "end": at(23, 15),
            },
            headers=USER,
        ).json()["next_free"]
        == body["next_free"]
    )
    created(client, start=at(23, 16), end=at(23, 18))


def test_no_free_gpus_suggests_a_window_for_the_count(client: TestClient) -> None:
    gpus = client.get("/api/v1/nodes/node-a").json()["gpus"]
    everything = [g["id"] for g in gpus]
    created(client, user="bob", gpu_ids=everything, start=at(23, 12), end=at(23, 14))
    body = assert_v1_error(create(client, gpu_count=2), 409, "no_free_gpus")
    assert body["next_free"] == {
        "start": at(23, 14),
        "end": at(23, 16),
        "gpu_ids": everything[:2],
    }
    assert {h["gpu_id"] for h in body["holders"]} == set(everything)
