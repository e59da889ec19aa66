"""Conditional GET on the polled native routes (calendar, nodes, job list): a strong ``ETag``
hashing the body, ``Cache-Control: no-cache``, and ``304`` when ``If-None-Match`` matches.

In-process (``client`` fixture: demo topology, clock fixed at Monday 2026-11-23 10:00 UTC).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from starlette.testclient import TestClient

from procplan.api.responses import etag_matches

USER = {"X-ProcPlan-User": "alice"}
WINDOW = {"start": "2026-11-23T00:00Z", "end": "2026-11-24T00:00Z"}
ROUTES: list[tuple[str, dict[str, str]]] = [
    ("/api/v1/calendar", WINDOW),
    ("/api/v1/nodes", {}),
    ("/api/v1/jobs", {}),
]
ROUTE_IDS = ["calendar", "nodes", "jobs"]


def fetch(client: TestClient, path: str, params: dict[str, str], tag: str | None = None) -> Any:
    headers = {} if tag is None else {"If-None-Match": tag}
    return client.get(path, params=params, headers=headers)


def book(client: TestClient) -> None:
    response = client.post(
        "/api/v1/bookings",
        json={
            "node_id": "node-a",
            "gpu_ids": ["node-a-gpu0"],
            "start": "2026-11-23T12:00:00Z",
            "end": "2026-11-23T14:00:00Z",
        },
        headers=USER,
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(("path", "params"), ROUTES, ids=ROUTE_IDS)
def test_etag_is_the_quoted_hash_of_the_body_and_stable(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    first = fetch(client, path, params)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json; charset=utf-8"
    assert first.headers["cache-control"] == "no-cache"
    tag = first.headers["etag"]
    assert tag == '"' + hashlib.blake2b(first.content, digest_size=16).hexdigest() + '"'
    second = fetch(client, path, params)
    assert second.headers["etag"] == tag
    assert second.content == first.content


@pytest.mark.parametrize(("path", "params"), ROUTES, ids=ROUTE_IDS)
def test_matching_tag_is_304_without_a_body(
    client: TestClient, path: str, params: dict[str, str]
) -> None:
    tag = fetch(client, path, params).headers["etag"]
    response = fetch(client, path, params, tag)
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == tag
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(("path", "params"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "form",
    [
        '"other", {tag}',
        '{tag},"other"',
        '"a" ,  {tag} , "b"',
        "W/{tag}",
        '"other", W/{tag}',
        "*",
    ],
)
def test_list_weak_and_star_forms_match(
    client: TestClient, path: str, params: dict[str, str], form: str
) -> None:
    tag = fetch(client, path, params).headers["etag"]
    response = fetch(client, path, params, form.format(tag=tag))
    assert response.status_code == 304
    assert response.content == b""


@pytest.mark.parametrize(("path", "params"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("other", ['"nope"', 'W/"nope"', '"a", "b"', "", "garbage"])
def test_non_matching_tag_is_200_with_the_body(
    client: TestClient, path: str, params: dict[str, str], other: str
) -> None:
    plain = fetch(client, path, params)
    response = fetch(client, path, params, other)
    assert response.status_code == 200
    assert response.content == plain.content
    assert response.headers["etag"] == plain.headers["etag"]


def test_a_new_booking_changes_the_calendar_tag(client: TestClient) -> None:
    before = fetch(client, "/api/v1/calendar", WINDOW)
    old = before.headers["etag"]
    book(client)
    after = fetch(client, "/api/v1/calendar", WINDOW, old)
    assert after.status_code == 200
    assert after.headers["etag"] != old
    assert after.content != before.content
    assert fetch(client, "/api/v1/calendar", WINDOW, after.headers["etag"]).status_code == 304


def test_a_new_job_changes_the_job_list_tag(client: TestClient) -> None:
    old = fetch(client, "/api/v1/jobs", {}).headers["etag"]
    submitted = client.post("/api/v1/jobs", json={"command": ["true"]}, headers=USER)
    assert submitted.status_code == 201, submitted.text
    after = fetch(client, "/api/v1/jobs", {}, old)
    assert after.status_code == 200
    assert after.headers["etag"] != old
    assert after.json()["total"] == 1


def test_query_parameters_are_part_of_the_tag(client: TestClient) -> None:
    day = fetch(client, "/api/v1/calendar", WINDOW)
    node = fetch(client, "/api/v1/calendar", {**WINDOW, "node_ids": "node-a"}, day.headers["etag"])
    assert node.status_code == 200
    assert node.headers["etag"] != day.headers["etag"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/calendar", {"start": "x", "end": "2026-11-24T00:00Z"}),
        ("/api/v1/calendar", {"end": "2026-11-24T00:00Z"}),
        ("/api/v1/jobs", {"limit": "0"}),
    ],
)
@pytest.mark.parametrize("tag", [None, "*"])
def test_errors_carry_no_tag(
    client: TestClient, path: str, params: dict[str, str], tag: str | None
) -> None:
    response = fetch(client, path, params, tag)
    assert response.status_code == 400
    assert "etag" not in response.headers
    assert response.json()["status"] == 400


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x","abc"', True),
        ("*", True),
        ('"ab"', False),
        ('"abc', False),
        ("abc", False),
        ("", False),
        ('"a,bc"', False),
    ],
)
def test_etag_matches(header: str, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches
