"""The OpenAPI document describes every request the routes read (issue #11): the fuzzer can
only reach a field the document shows, so a route that reads a body or a query must declare
it, and every declared model must resolve."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

# Operations that read no body: their input is the path (and the caller's identity).
BODILESS = {
    ("POST", "/api/reload_config"),
    ("POST", "/api/v1/bookings/{booking_id}/release"),
    ("POST", "/api/v1/bookings/{booking_id}/cancel"),
    ("POST", "/api/v1/bookings/{booking_id}/keep"),
    ("POST", "/api/v1/jobs/{raw_id}/heartbeat"),
    ("POST", "/api/v1/users/{name}/login-link"),
    ("POST", "/api/v1/feeds"),  # makes a feed secret for the caller
    ("POST", "/api/v1/notify/channels/{channel_id}/test"),
    ("POST", "/api/v1/nodes/{node_id}/resume"),
    ("POST", "/api/v1/nodes/{node_id}/remove"),
}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_body_is_declared_with_a_model(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    missing = []
    for method, path, operation in operations(document):
        if method not in ("POST", "PUT", "PATCH") or (method, path) in BODILESS:
            continue
        body = operation.get("requestBody")
        if body is None:
            missing.append(f"{method} {path}")
            continue
        for content in body["content"].values():
            ref = content["schema"].get("$ref")
            if ref is not None:
                assert ref.rsplit("/", 1)[1] in schemas, (method, path, ref)
    assert not missing, f"routes without a declared body: {missing}"


def test_declared_fields_carry_their_bounds(client: TestClient) -> None:
    """Spot checks: integers have a range, names a length, timestamps a format."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    job = schemas["JobSubmit"]["properties"]
    assert job["gpu_count"]["anyOf"][0] == {"type": "integer", "minimum": 0, "maximum": 100000}
    assert job["pid"]["anyOf"][0]["maximum"] == 2**31 - 1
    assert job["name"]["anyOf"][0]["maxLength"] == 256
    booking = schemas["BookingCreate"]["properties"]
    assert booking["start"]["format"] == "date-time"
    assert schemas["HeartbeatBody"]["properties"]["readings"]["maxItems"] == 512


def test_queries_are_parameters(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    listed = document["paths"]["/api/v1/jobs"]["get"]["parameters"]
    limit = next(p for p in listed if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}
    availability = document["paths"]["/api/availability"]["get"]["parameters"]
    assert {p["name"] for p in availability} == {"node_id", "start", "end", "granularity"}
    assert next(p for p in availability if p["name"] == "node_id")["required"] is True
