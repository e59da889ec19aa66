"""The node maintenance routes (ADR 0020) as attacks and as a contract.

``POST /api/v1/nodes/{id}/drain|resume|remove`` are the admins' (a plain user gets 403 and
nothing changes); an unknown node is a 404 ``unknown_node``; a reason with control characters,
a line break, a bidi override or past 256 characters is a 400 naming the field, as is any other
field; the answer and the node document keep their shapes (the old node fields first, the
``sinfo``-like ``sched_state`` and ``reason`` added, ``state`` still the agent's liveness).
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from procplan.server import Composed

NODE_KEYS_BEFORE = [
    "id", "name", "gpu_count", "state", "hostname", "address", "last_seen", "last_seen_age_s",
    "agent", "read_error", "gpus",
]  # fmt: skip
ANSWER_KEYS = [
    "node", "drained", "reason", "drained_at", "drained_by", "removed", "removed_at",
    "notified_bookings",
]  # fmt: skip
ACTIONS = ["drain", "resume", "remove"]


def error(answer: Any, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert (body["status"], body["code"]) == (status, code), body
    message: str = body["error"]
    return message


def drained(client: TestClient, node: str) -> bool:
    nodes = client.get("/api/v1/nodes").json()["nodes"]
    return any(n["id"] == node and n["sched_state"] in ("draining", "drained") for n in nodes)


@pytest.mark.parametrize("action", ACTIONS)
def test_a_plain_user_may_not_change_a_node(
    action: str, alice: TestClient, client: TestClient
) -> None:
    if action != "drain":
        client.post("/api/v1/nodes/node-a/drain", json={"reason": "by the admin"})
    before = client.get("/api/v1/nodes").json()["nodes"]
    answer = alice.post(f"/api/v1/nodes/node-a/{action}", json={"reason": "mine now"})
    error(answer, 403, "not_admin")
    assert client.get("/api/v1/nodes").json()["nodes"] == before


@pytest.mark.parametrize("action", ACTIONS)
def test_nobody_may_change_a_node(action: str, anon: TestClient) -> None:
    assert anon.post(f"/api/v1/nodes/node-a/{action}", json={}).status_code == 401


@pytest.mark.parametrize("action", ACTIONS)
def test_an_unknown_node_is_a_404(action: str, client: TestClient) -> None:
    message = error(client.post(f"/api/v1/nodes/ghost/{action}", json={}), 404, "unknown_node")
    assert "ghost" in message
    too_long = client.post(f"/api/v1/nodes/{'n' * 200}/{action}", json={})
    assert too_long.status_code == 400, too_long.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"reason": "disk\x1b[31m swap"}, "reason"),
        ({"reason": "line one\nline two"}, "reason"),
        ({"reason": "evil \u202e txt"}, "reason"),
        ({"reason": "r" * 257}, "at most 256"),
        ({"reason": 42}, "reason must be a string"),
        ({"reason": "ok", "force": True}, "force"),
    ],
)
def test_a_bad_reason_is_a_400_and_changes_nothing(
    body: dict[str, Any], fragment: str, client: TestClient
) -> None:
    message = error(client.post("/api/v1/nodes/node-a/drain", json=body), 400, "invalid_request")
    assert fragment in message
    assert not drained(client, "node-a")


def test_not_json_is_refused(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/nodes/node-a/drain", content=b"reason=x", headers={"Content-Type": "text/plain"}
    )
    assert answer.status_code in (400, 415), answer.text
    assert not drained(client, "node-a")


def test_answers_and_the_node_document_keep_their_shapes(
    client: TestClient, composed: Composed
) -> None:
    answer = client.post("/api/v1/nodes/node-a/drain", json={"reason": "  fan swap  "})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ANSWER_KEYS
    assert (body["node"], body["drained"], body["reason"], body["removed"]) == (
        "node-a", True, "fan swap", False,
    )  # fmt: skip
    assert body["drained_by"] and body["drained_at"].endswith("+00:00")

    one = client.get("/api/v1/nodes/node-a").json()
    assert list(one)[: len(NODE_KEYS_BEFORE)] == NODE_KEYS_BEFORE
    assert (one["state"], one["sched_state"], one["reason"]) == ("unmanaged", "drained", "fan swap")
    other = client.get("/api/v1/nodes/node-b").json()
    assert (other["sched_state"], other["reason"], other["drained_at"]) == ("idle", None, None)

    empty = client.post("/api/v1/nodes/node-b/drain", json={})  # no reason is allowed
    assert empty.status_code == 200 and empty.json()["reason"] is None
    resumed = client.post("/api/v1/nodes/node-a/resume").json()
    assert list(resumed) == ANSWER_KEYS and resumed["drained"] is False
    again = client.post("/api/v1/nodes/node-a/resume")  # idempotent
    assert again.status_code == 200 and again.json()["drained"] is False

    entries = client.get("/api/v1/audit").json()
    actions = [e["action"] for e in entries.get("entries", entries.get("audit", []))]
    assert {"node.drain", "node.resume"} <= set(actions), entries


def test_the_compat_nodes_route_is_unchanged(client: TestClient) -> None:
    before = client.get("/api/nodes").json()
    client.post("/api/v1/nodes/node-a/drain", json={"reason": "x"})
    assert client.get("/api/nodes").json() == before  # ProcPlan 1.0's shape: no new keys
