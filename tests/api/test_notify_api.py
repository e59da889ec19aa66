"""``/api/v1/notify/channels`` (issue #14): each user manages their own channels, admins see
everyone's and set the cluster's; a channel's URL never comes back whole (it may hold a
password or a webhook's secret path); bad input is a 4xx that stores nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.conftest import signed_in

from procplan.server import Composed

BASE = "/api/v1/notify/channels"
SECRET_HOOK = "json://hooks.example.org/s3cr3t-path?token=abcdef"


def test_add_list_remove_without_showing_the_secret(composed: Composed) -> None:
    with signed_in(composed, "alice") as alice:
        made = alice.post(BASE, json={"url": SECRET_HOOK, "events": "job.failed,booking"})
        assert made.status_code == 201, made.text
        channel = made.json()
        assert channel["url"] == "json://hooks.example.org/…"
        assert channel["user"] == "alice" and channel["cluster"] is False
        assert channel["events"] == ["job.failed", "booking"]
        listed = alice.get(BASE).json()
        assert [c["id"] for c in listed["channels"]] == [channel["id"]]
        assert "s3cr3t" not in alice.get(BASE).text
        gone = alice.delete(f"{BASE}/{channel['id']}")
        assert gone.status_code == 200 and gone.json()["removed"] is True
        assert alice.get(BASE).json()["channels"] == []


def test_bad_input_is_refused_with_a_reason(composed: Composed) -> None:
    with signed_in(composed, "alice") as alice:
        bad_url = alice.post(BASE, json={"url": "nonsense://x"})
        assert bad_url.status_code == 400 and "apprise" in bad_url.text
        bad_events = alice.post(BASE, json={"url": SECRET_HOOK, "events": "job.exploded"})
        assert bad_events.status_code == 400 and "unknown event" in bad_events.text
        extra = alice.post(BASE, json={"url": SECRET_HOOK, "owner": "bob"})
        assert extra.status_code == 400
        assert alice.get(BASE).json()["channels"] == []


def test_other_users_channels_are_out_of_reach(composed: Composed, client: TestClient) -> None:
    with signed_in(composed, "alice") as alice, signed_in(composed, "bob") as bob:
        channel = alice.post(BASE, json={"url": SECRET_HOOK}).json()
        assert bob.get(BASE).json()["channels"] == []
        assert bob.delete(f"{BASE}/{channel['id']}").status_code == 403
        assert bob.post(f"{BASE}/{channel['id']}/test").status_code == 403
        assert bob.post(BASE, json={"url": SECRET_HOOK, "cluster": True}).status_code == 403
    everyone = client.get(BASE).json()["channels"]  # the admin's list
    assert [c["user"] for c in everyone] == ["alice"]
    assert client.delete(f"{BASE}/999999").status_code == 404


def test_an_admin_sets_a_cluster_channel_for_node_events(client: TestClient) -> None:
    made = client.post(BASE, json={"url": SECRET_HOOK, "cluster": True, "label": "lab"})
    assert made.status_code == 201, made.text
    assert made.json()["cluster"] is True
    assert made.json()["events"] == ["node.offline", "node.online"]


def test_a_test_message_reports_its_failure(composed: Composed) -> None:
    with signed_in(composed, "alice") as alice:
        channel = alice.post(BASE, json={"url": "json://127.0.0.1:9/nobody-listens"}).json()
        answer = alice.post(f"{BASE}/{channel['id']}/test")
        assert answer.status_code == 200
        assert answer.json()["sent"] is False and answer.json()["error"]
        (listed,) = alice.get(BASE).json()["channels"]
        assert listed["last_error"] and listed["last_error_at"]


def test_nobody_signed_in_gets_401(composed: Composed) -> None:
    with TestClient(composed.app, base_url="http://testserver", client=("10.0.0.9", 5)) as anon:
        assert anon.get(BASE).status_code == 401
