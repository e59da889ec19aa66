"""Calendar feeds (issue #17, ADR 0022): a per-user URL secret, hashed at rest, revocable,
reading that user's or a node's bookings as iCalendar; attacks answer a uniform 404."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient
from tests.api.test_native_api import created

from procplan.server import Composed
from procplan.service.accounts import digest_of

ICS = "text/calendar; charset=utf-8"


def feed_of(client: TestClient) -> dict[str, Any]:
    made = client.post("/api/v1/feeds")
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def secret_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def test_user_feed_lists_own_bookings_only(alice: TestClient, bob: TestClient) -> None:
    mine = created(alice, user=None, label="AB")
    created(bob, user=None, gpu_ids=["node-a-gpu1"], label="BOBS")
    feed = feed_of(alice)
    assert feed["user"] == "alice"
    answer = alice.get(path_of(feed["url"]))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == ICS
    text = answer.text
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    assert f"UID:booking-{mine['id']}@" in text and "DTSTART:20261123T120000Z" in text
    assert "BOBS" not in text and text.count("BEGIN:VEVENT") == 1


def test_node_feed_shows_the_nodes_bookings(alice: TestClient, bob: TestClient) -> None:
    created(alice, user=None, label="AB")
    created(bob, user=None, gpu_ids=["node-a-gpu1"], label="BOBS")
    created(bob, user=None, node_id="node-b", gpu_ids=None, gpu_count=1, label="ELSEWHERE")
    feed = feed_of(alice)
    text = alice.get(path_of(feed["node_url"].replace("{node_id}", "node-a"))).text
    assert text.count("BEGIN:VEVENT") == 2 and "BOBS" in text and "ELSEWHERE" not in text
    unknown = alice.get(path_of(feed["node_url"].replace("{node_id}", "nope")))
    assert unknown.status_code == 404


def test_secret_is_stored_hashed_and_is_no_api_token(composed: Composed, alice: TestClient) -> None:
    feed = feed_of(alice)
    secret = secret_of(feed["url"])
    row = composed.app.state.ctx.accounts.store.by_digest(digest_of(secret))
    assert row is not None and row[1] == "feed"
    with TestClient(composed.app) as stranger:
        me = stranger.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 401  # a leaked feed URL books nothing


def test_revoked_replaced_and_wrong_secrets_get_the_same_404(
    alice: TestClient, anon: TestClient
) -> None:
    first = feed_of(alice)
    second = feed_of(alice)  # replaces the first
    missing = anon.get("/api/v1/no-such-route")
    old = anon.get(path_of(first["url"]))
    assert anon.get(path_of(second["url"])).status_code == 200
    assert alice.delete("/api/v1/feeds").json() == {"user": "alice", "revoked": 1}
    revoked = anon.get(path_of(second["url"]))
    wrong = anon.get("/api/v1/feeds/user.ics?token=ppf_" + "A" * 43)
    none = anon.get("/api/v1/feeds/user.ics")
    huge = anon.get("/api/v1/feeds/user.ics?token=" + "x" * 5000)
    for answer in (old, revoked, wrong, none, huge):
        assert (answer.status_code, answer.json()) == (404, missing.json())


def test_only_signed_in_users_make_feeds(anon: TestClient) -> None:
    assert anon.post("/api/v1/feeds").status_code == 401
    assert anon.delete("/api/v1/feeds").status_code == 401


def test_secret_never_reaches_the_logs(alice: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    feed = feed_of(alice)
    secret = secret_of(feed["url"])
    with caplog.at_level(logging.DEBUG):
        alice.get(path_of(feed["url"]))
        alice.get(path_of(feed["node_url"].replace("{node_id}", "node-a")))
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]  # the client's
    assert all(secret not in record.getMessage() for record in server_side)
    audit = alice.get("/api/v1/audit").json()
    assert secret not in str(audit)


def test_server_runs_without_an_access_log() -> None:
    """Uvicorn's access log would write each request line, query string and secret
    included; the server turns it off (``procplan.server``)."""
    import inspect

    from procplan import server

    assert '"access_log": False' in inspect.getsource(server)
