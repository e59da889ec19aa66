"""ProcPlanClient against a canned HTTP server: what it sends and how failures map."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from procplan.client import (
    DEFAULT_URL,
    USER_HEADER,
    ApiError,
    InvalidResponse,
    ProcPlanClient,
    ServerUnreachable,
    format_time,
    resolve_url,
)


def test_resolve_url_prefers_flag_then_env_then_default(monkeypatch):
    monkeypatch.setenv("PROCPLAN_URL", "http://env:9000/")
    assert resolve_url("http://flag:1/") == "http://flag:1"
    assert resolve_url(None) == "http://env:9000"
    monkeypatch.delenv("PROCPLAN_URL")
    assert resolve_url(None) == DEFAULT_URL
    assert resolve_url("  ") == DEFAULT_URL


def test_format_time_normalises_to_utc_iso():
    assert format_time("2026-11-24T09:00") == "2026-11-24T09:00"
    assert format_time(datetime(2026, 11, 24, 9, tzinfo=UTC)) == "2026-11-24T09:00:00+00:00"
    assert format_time(datetime(2026, 11, 24, 9)) == "2026-11-24T09:00:00+00:00"
    assert format_time(0) == "1970-01-01T00:00:00+00:00"


def test_sends_acting_for_header_query_and_json_body(fake_server):
    fake_server.add("POST", "/api/v1/bookings", 201, {"booking": {"id": 7}})
    fake_server.add("GET", "/api/v1/bookings", 200, {"bookings": [], "total": 0})
    with ProcPlanClient(fake_server.url, act_as="alice") as client:
        created = client.bookings.create(
            "node-a", "2026-11-24T09:00", duration_minutes=90, gpu_count=2, label="AB"
        )
        client.bookings.list(user="alice", status="active", limit=5)
    assert created == {"booking": {"id": 7}}
    post, get = fake_server.requests
    assert post.headers[USER_HEADER] == "alice"
    assert post.json() == {
        "node_id": "node-a",
        "gpu_count": 2,
        "start": "2026-11-24T09:00",
        "duration_minutes": 90,
        "label": "AB",
    }
    assert get.query == {"user": ["alice"], "status": ["active"], "limit": ["5"]}


def test_native_booking_routes_hit_their_paths(fake_server):
    for method, path in [
        ("GET", "/api/v1/bookings/3"),
        ("PATCH", "/api/v1/bookings/3"),
        ("POST", "/api/v1/bookings/3/release"),
        ("POST", "/api/v1/bookings/3/cancel"),
        ("GET", "/api/v1/calendar"),
        ("DELETE", "/api/bookings/3"),
    ]:
        fake_server.add(method, path, 200, {"ok": path})
    with ProcPlanClient(fake_server.url) as client:
        assert client.bookings.get(3) == {"ok": "/api/v1/bookings/3"}
        client.bookings.set_end(3, "2026-11-24T12:00")
        client.bookings.release(3)
        client.bookings.cancel(3)
        client.bookings.calendar("2026-11-23", "2026-11-30", node_ids=["a", "b"])
        client.compat.cancel(3)
    patch = fake_server.calls("PATCH", "/api/v1/bookings/3")[0]
    assert patch.json() == {"end": "2026-11-24T12:00"}
    calendar = fake_server.calls("GET", "/api/v1/calendar")[0]
    assert calendar.query["node_ids"] == ["a,b"]


def test_refusal_raises_api_error_with_server_message(fake_server):
    body = {"error": "GPU 'g0' is already booked", "status": 409, "code": "conflict"}
    fake_server.add("POST", "/api/v1/bookings", 409, body)
    with ProcPlanClient(fake_server.url) as client, pytest.raises(ApiError) as info:
        client.bookings.create("node-a", "2026-11-24T09:00", end="2026-11-24T10:00")
    assert (info.value.status, info.value.message, info.value.code) == (
        409,
        "GPU 'g0' is already booked",
        "conflict",
    )


def test_refusal_without_json_keeps_the_text(fake_server):
    fake_server.add("GET", "/api/nodes", 502, b"Bad Gateway from proxy")
    with ProcPlanClient(fake_server.url) as client, pytest.raises(ApiError) as info:
        client.compat.nodes()
    assert info.value.status == 502
    assert info.value.message == "Bad Gateway from proxy"
    assert info.value.code is None


def test_non_json_success_is_invalid_response(fake_server):
    fake_server.add("GET", "/api/nodes", 200, b"<html>hello</html>")
    with ProcPlanClient(fake_server.url) as client, pytest.raises(InvalidResponse):
        client.compat.nodes()


def test_nobody_listening_is_server_unreachable(dead_url):
    with ProcPlanClient(dead_url, timeout=2.0) as client, pytest.raises(ServerUnreachable) as info:
        client.nodes.list()
    assert info.value.url == dead_url
    assert info.value.reason


def test_plain_http_pools_skip_the_ca_bundle_but_never_trust_tls():
    """Issue #17: loading the CA bundle for a server that never speaks TLS cost every command
    ~20 ms; the context it gets instead verifies with no CA, so it could trust nothing."""
    import ssl

    from procplan.client.transport import tls_verify

    plain = tls_verify("http://127.0.0.1:8080", None, True)
    assert isinstance(plain, ssl.SSLContext)
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.get_ca_certs() == []
    assert isinstance(tls_verify("unix:///run/p.sock", "/run/p.sock", True), ssl.SSLContext)
    assert tls_verify("https://gpu-planner", None, True) is True
    assert tls_verify("http://127.0.0.1:8080", None, False) is False
