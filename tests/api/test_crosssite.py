"""The cross-site checks on raw ASGI scopes: Host names, Origin/Referer, body types."""

from __future__ import annotations

import pytest

from procplan.api.crosssite import CrossSite, allowed_host_names, split_host


async def _app(scope: object, receive: object, send: object) -> None:  # pragma: no cover
    raise AssertionError("not reached")


GUARD = CrossSite(_app, allowed_host_names("0.0.0.0", ["planner.lab.example"]))


def scope(method: str, host: str, **headers: str) -> dict[str, object]:
    raw = [(b"host", host.encode())]
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "path": "/api/v1/jobs", "headers": raw}


def code(method: str, host: str, **headers: str) -> str | None:
    found = GUARD.problem(scope(method, host, **headers))
    return None if found is None else found[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("localhost:8080", ("localhost", "8080")),
        ("[::1]:8080", ("::1", "8080")),
        ("[::1]", ("::1", "")),
        ("Planner.Lab.Example", ("planner.lab.example", "")),
        ("::1", ("::1", "")),
    ],
)
def test_host_values_split_into_name_and_port(value: str, expected: tuple[str, str]) -> None:
    assert split_host(value) == expected


def test_only_this_servers_names_are_hosts() -> None:
    for good in ("localhost:8080", "127.0.0.1:8080", "[::1]:8080", "10.1.2.3", "app.localhost"):
        assert code("GET", good) is None, good
    assert code("GET", "planner.lab.example:443") is None
    for rebound in ("evil.example", "localhost.evil.example", "", "127.0.0.1.nip.io"):
        assert code("GET", rebound) == "unknown_host", rebound


def test_writes_from_other_origins_are_refused() -> None:
    json = {"content_type": "application/json", "content_length": "2"}
    assert code("POST", "localhost:8080", origin="http://localhost:8080", **json) is None
    assert code("POST", "localhost", origin="http://localhost:80", **json) is None
    for origin in ("http://localhost:3000", "https://evil.example", "null", "file://"):
        assert code("POST", "localhost:8080", origin=origin, **json) == "cross_site", origin
    assert code("POST", "localhost:8080", referer="http://evil.example/x", **json) == "cross_site"
    assert code("GET", "localhost:8080", origin="https://evil.example") is None  # reads: SOP


def test_bodies_a_page_may_send_unasked_are_refused() -> None:
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        sent = {"content_type": kind, "content_length": "5"}
        assert code("POST", "localhost", **sent) == "unsupported_media_type", kind
    assert code("POST", "localhost", content_length="5") == "unsupported_media_type"
    assert code("POST", "localhost", transfer_encoding="chunked") == "unsupported_media_type"
    assert code("POST", "localhost") is None  # no body: nothing to mistake for JSON
    bearer = {"content_type": "text/plain", "content_length": "5", "authorization": "Bearer x"}
    assert code("POST", "localhost", **bearer) is None  # a page cannot add this unasked
