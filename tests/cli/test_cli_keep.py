"""``procplan keep BOOKING_ID``: the owner's answer to an idle warning (ADR 0013)."""

from __future__ import annotations

BOOKING = {
    "id": 7, "node_id": "node-a", "gpu_ids": ["node-a-gpu0"], "start": "2026-11-24T09:00:00+00:00",
    "end": "2026-11-24T11:00:00+00:00", "user": "alice", "label": "AB", "priority": "high",
    "status": "active", "created_at": "2026-11-22T08:00:00+00:00",
}  # fmt: skip
IDLE = {"booking_id": 7, "idle_since": None, "warned_at": None, "release_at": None,
        "keep": True, "released_reason": None}  # fmt: skip


def test_keep_posts_and_prints_the_booking(cli, fake_server):
    fake_server.add("POST", "/api/v1/bookings/7/keep", 200, {"booking": BOOKING, "idle": IDLE})
    result = cli("keep", "7")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Kept #7 node-a [node-a-gpu0]")
    assert [r.path for r in fake_server.requests] == ["/api/v1/bookings/7/keep"]


def test_keep_refused_exits_1_with_the_servers_message(cli, fake_server):
    error = {"error": "booking 7 belongs to alice", "status": 403, "code": "forbidden"}
    fake_server.add("POST", "/api/v1/bookings/7/keep", 403, error)
    result = cli("keep", "7")
    assert result.exit_code == 1
    assert "belongs to alice" in result.output


def test_tenant_idle_reclaim_sets_the_override(cli, fake_server):
    path = "/api/v1/tenants/lab/idle-reclaim"
    fake_server.add("PUT", path, 200, {"tenant_id": "lab", "idle_reclaim": True})
    fake_server.add("PUT", path, 200, {"tenant_id": "lab", "idle_reclaim": None})
    assert cli("tenant", "idle-reclaim", "lab", "on").stdout == "Idle reclaim for tenant lab: on\n"
    assert cli("tenant", "idle-reclaim", "lab", "cluster").exit_code == 0
    assert [r.path for r in fake_server.requests] == [path, path]
    assert [r.json() for r in fake_server.requests] == [{"enabled": True}, {"enabled": None}]


def test_tenant_idle_reclaim_refuses_an_unknown_mode(cli, fake_server):
    result = cli("tenant", "idle-reclaim", "lab", "maybe")
    assert result.exit_code == 2
    assert fake_server.requests == []
