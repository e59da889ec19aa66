"""Issue #12's attacks, each refused, as a hostile lab member would try them in-process.

alice and bob are plain users with API tokens, ``client`` is an admin (``tester``), ``anon``
sends no credentials at all. Every refusal is a 401/403/400 with a message, and the object
under attack is unchanged afterwards.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient
from tests.conftest import FIXED_NOW, TEST_ADMIN, signed_in, token_for

from procplan.core.identity import Role
from procplan.server import Composed

pytestmark = pytest.mark.usefixtures("workstation")

HOUR = 3600
NODE = "node-a"


def iso(instant: int) -> str:
    from procplan.core.timeutil import to_iso

    return to_iso(instant)


def book(client: TestClient, hours: int = 2, **fields: Any) -> dict[str, Any]:
    body = {
        "node_id": NODE,
        "start": iso(FIXED_NOW + HOUR),
        "end": iso(FIXED_NOW + (1 + hours) * HOUR),
        "gpu_count": 1,
        **fields,
    }
    response = client.post("/api/v1/bookings", json=body)
    assert response.status_code == 201, response.text
    booking: dict[str, Any] = response.json()["booking"]
    return booking


def submit(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"command": ["python", "train.py"], "gpu_count": 1, "env": {"TOKEN": "s3cret"}}
    response = client.post("/api/v1/jobs", json={**body, **fields})
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()["job"]
    return job


def booking_mutations(booking_id: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    end = iso(FIXED_NOW + 5 * HOUR)
    return [
        ("PATCH", f"/api/v1/bookings/{booking_id}", {"end": end}),
        ("POST", f"/api/v1/bookings/{booking_id}/release", None),
        ("POST", f"/api/v1/bookings/{booking_id}/cancel", None),
        ("DELETE", f"/api/v1/bookings/{booking_id}", None),
        ("DELETE", f"/api/bookings/{booking_id}", None),
        ("POST", "/api/mark_done", {"booking_id": booking_id}),
    ]


# ---- bookings ------------------------------------------------------------------------------


def test_nobody_changes_someone_elses_booking(
    alice: TestClient, bob: TestClient, anon: TestClient
) -> None:
    booking = book(alice)
    for method, path, body in booking_mutations(booking["id"]):
        as_bob = bob.request(method, path, json=body)
        assert as_bob.status_code == 403, (method, path, as_bob.text)
        assert "alice" in as_bob.json()["error"]
        as_anon = anon.request(method, path, json=body)
        assert as_anon.status_code == 401, (method, path, as_anon.text)
        forged = anon.request(method, path, json=body, headers={"X-ProcPlan-User": "alice"})
        assert forged.status_code == 401, (method, path, forged.text)
    after = alice.get(f"/api/v1/bookings/{booking['id']}").json()
    assert after["status"] == "active" and after["end"] == booking["end"]


def test_owners_and_admins_change_bookings(alice: TestClient, client: TestClient) -> None:
    mine = book(alice)
    assert alice.post(f"/api/v1/bookings/{mine['id']}/cancel").status_code == 200
    theirs = book(alice)
    assert client.delete(f"/api/v1/bookings/{theirs['id']}").status_code == 200
    entries = client.get("/api/v1/audit").json()["entries"]
    acted = [e for e in entries if e["action"] == "booking.cancel"]
    assert {(e["actor"], e["owner"], e["as_admin"]) for e in acted} == {
        ("alice", "alice", False),
        (TEST_ADMIN, "alice", True),
    }


def test_nobody_books_in_someone_elses_name(bob: TestClient, anon: TestClient) -> None:
    body = {"node_id": NODE, "gpu_count": 1}
    window = {"start": iso(FIXED_NOW + HOUR), "end": iso(FIXED_NOW + 2 * HOUR)}
    named = bob.post("/api/v1/bookings", json={**body, **window, "user": "alice"})
    assert named.status_code == 403
    header = bob.post(
        "/api/v1/bookings", json={**body, **window}, headers={"X-ProcPlan-User": "alice"}
    )
    assert header.status_code == 403
    compat = {**body, **window, "user_label": "alice"}
    assert anon.post("/api/book", json=compat).status_code == 401
    made = bob.post("/api/book", json=compat)
    assert made.status_code == 201, made.text  # a label is a label: the booking is bob's
    listed = bob.get("/api/v1/bookings").json()["bookings"]
    assert [b["user"] for b in listed if b["id"] == made.json()["booking_id"]] == ["bob"]


def test_an_admin_acts_for_a_user_on_the_record(client: TestClient) -> None:
    booking = book(client, user="carol")
    assert booking["user"] == "carol"
    entry = client.get("/api/v1/audit", params={"user": "carol"}).json()["entries"][0]
    assert (entry["actor"], entry["owner"], entry["as_admin"]) == (TEST_ADMIN, "carol", True)


# ---- jobs ----------------------------------------------------------------------------------


def test_nobody_touches_someone_elses_job(
    alice: TestClient, bob: TestClient, anon: TestClient
) -> None:
    job = submit(alice)
    job_id = job["id"]
    for method, path in [
        ("DELETE", f"/api/v1/jobs/{job_id}"),
        ("POST", f"/api/v1/jobs/{job_id}/release"),
        ("POST", f"/api/v1/jobs/{job_id}/heartbeat"),
        ("GET", f"/api/v1/jobs/{job_id}/wait"),
        ("GET", f"/api/v1/jobs/{job_id}/logs"),
    ]:
        assert bob.request(method, path).status_code == 403, (method, path)
        assert anon.request(method, path).status_code == 401, (method, path)
    assert alice.get(f"/api/v1/jobs/{job_id}").json()["state"] == "pending"


def test_job_environments_are_the_owners(
    alice: TestClient, bob: TestClient, anon: TestClient, client: TestClient
) -> None:
    job_id = submit(alice)["id"]
    assert alice.get(f"/api/v1/jobs/{job_id}").json()["env"] == {"TOKEN": "s3cret"}
    assert client.get(f"/api/v1/jobs/{job_id}").json()["env"] == {"TOKEN": "s3cret"}
    for viewer in (bob, anon):
        shown = viewer.get(f"/api/v1/jobs/{job_id}").json()
        assert shown["env"] is None and shown["user"] == "alice"  # names stay visible
        listed = viewer.get("/api/v1/jobs").json()["jobs"]
        assert "s3cret" not in str(listed)


def test_nobody_submits_in_someone_elses_name(bob: TestClient, anon: TestClient) -> None:
    job = {"command": ["true"], "gpu_count": 1}
    assert bob.post("/api/v1/jobs", json={**job, "user": "alice"}).status_code == 403
    assert anon.post("/api/v1/jobs", json=job).status_code == 401
    forged = anon.post("/api/v1/jobs", json=job, headers={"X-ProcPlan-User": "root"})
    assert forged.status_code == 401


# ---- tenants, topology, users --------------------------------------------------------------


def test_tenants_are_the_admins_and_their_managers(
    composed: Composed, client: TestClient, bob: TestClient
) -> None:
    assert (
        bob.post("/api/v1/tenants", json={"name": "mine", "fair_share_weight": 9}).status_code
        == 403
    )
    assert client.post("/api/v1/tenants", json={"name": "lab"}).status_code == 201
    assert bob.patch("/api/v1/tenants/lab", json={"max_gpus": None}).status_code == 403
    assert bob.put("/api/v1/tenants/lab/members/bob").status_code == 403
    made = client.put("/api/v1/tenants/lab/members/alice", json={"manager": True})
    assert made.status_code == 200, made.text
    assert made.json()["managers"] == ["alice"] and "alice" in made.json()["members"]
    with signed_in(composed, "alice") as manager:
        assert manager.patch("/api/v1/tenants/lab", json={"max_gpus": 4}).status_code == 200
        weight = manager.patch("/api/v1/tenants/lab", json={"fair_share_weight": 50})
        assert weight.status_code == 403
        assert manager.put("/api/v1/tenants/lab/members/dave").status_code == 200
        promote = manager.put("/api/v1/tenants/lab/members/dave", json={"manager": True})
        assert promote.status_code == 403
        assert manager.patch("/api/v1/tenants/default", json={"max_gpus": 1}).status_code == 403


def test_topology_reload_and_users_are_for_admins(bob: TestClient) -> None:
    assert bob.post("/api/reload_config").status_code == 403
    assert bob.get("/api/v1/users").status_code == 403
    assert bob.post("/api/v1/users", json={"name": "eve", "role": "admin"}).status_code == 403
    assert bob.patch("/api/v1/users/bob", json={"role": "admin"}).status_code == 403
    assert bob.get("/api/v1/me").json()["role"] == "user"
    assert bob.patch("/api/v1/users/bob", json={"password": "correct horse"}).status_code == 200
    assert bob.patch("/api/v1/users/alice", json={"password": "correct horse"}).status_code == 403


# ---- credentials ---------------------------------------------------------------------------


def test_tokens_are_shown_once_and_die_when_revoked(
    composed: Composed, alice: TestClient, bob: TestClient
) -> None:
    made = alice.post("/api/v1/tokens", json={"name": "laptop"})
    assert made.status_code == 201
    secret, token_id = made.json()["token"], made.json()["id"]
    assert secret.startswith("pp_") and len(secret) >= 43
    listing = alice.get("/api/v1/tokens").json()["tokens"]
    assert secret not in str(listing) and "laptop" in str(listing)
    assert bob.delete(f"/api/v1/tokens/{token_id}").status_code == 403
    with TestClient(composed.app, headers={"Authorization": f"Bearer {secret}"}) as laptop:
        assert laptop.get("/api/v1/me").json()["user"] == "alice"
        assert alice.delete(f"/api/v1/tokens/{token_id}").status_code == 200
        refused = laptop.get("/api/v1/me")
        assert refused.status_code == 401 and refused.json()["code"] == "bad_token"
    with composed.store.read() as conn:
        stored = conn.execute(sa.text("SELECT digest, name FROM credentials")).all()
    assert stored and secret not in str(stored)


def test_bad_and_expired_tokens_are_401(composed: Composed, anon: TestClient) -> None:
    for header in ("Bearer pp_nope", "Bearer ", "Basic YWxpY2U6cHc=", "Bearer " + "x" * 500):
        response = anon.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header
    secret, _ = composed.accounts.create_token(
        composed.accounts.store.save_user("frank", FIXED_NOW).name, "short", FIXED_NOW + 60
    )
    ok = anon.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert ok.json()["user"] == "frank"
    composed.accounts.forget_cached()
    composed.bookings.clock.advance(120)  # type: ignore[attr-defined]
    late = anon.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert late.status_code == 401


def test_sign_in_sets_a_safe_cookie_and_sign_out_revokes_it(
    composed: Composed, client: TestClient, anon: TestClient
) -> None:
    made = client.post("/api/v1/users", json={"name": "gina", "password": "long enough pw"})
    assert made.status_code == 201, made.text
    wrong = anon.post("/api/v1/session", json={"user": "gina", "password": "wrong password"})
    nobody = anon.post("/api/v1/session", json={"user": "nobody", "password": "wrong password"})
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["error"] == nobody.json()["error"]
    signed = anon.post("/api/v1/session", json={"user": "gina", "password": "long enough pw"})
    assert signed.status_code == 200
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert anon.get("/api/v1/me").json()["user"] == "gina"
    assert anon.delete("/api/v1/session").status_code == 200
    assert anon.get("/api/v1/me").json()["user"] is None


def test_a_login_link_works_once(client: TestClient, anon: TestClient) -> None:
    client.post("/api/v1/users", json={"name": "hal"})
    url = client.post("/api/v1/users/hal/login-link").json()["url"]
    secret = url.split("#link=", 1)[1]
    assert anon.post("/api/v1/session", json={"link": secret}).json()["user"] == "hal"
    anon.cookies.clear()
    assert anon.post("/api/v1/session", json={"link": secret}).status_code == 401


def test_removed_users_lose_their_tokens(composed: Composed, client: TestClient) -> None:
    secret = token_for(composed, "ivan")
    assert client.delete("/api/v1/users/ivan").status_code == 200
    with TestClient(composed.app, headers={"Authorization": f"Bearer {secret}"}) as ivan:
        assert ivan.get("/api/v1/me").status_code == 401


def test_the_last_admin_stays(composed: Composed, client: TestClient) -> None:
    refused = client.patch(f"/api/v1/users/{TEST_ADMIN}", json={"role": "user"})
    assert refused.status_code == 409 and refused.json()["code"] == "last_admin"
    token_for(composed, "judy", Role.ADMIN)
    assert client.patch(f"/api/v1/users/{TEST_ADMIN}", json={"role": "user"}).status_code == 200


# ---- cross-site ----------------------------------------------------------------------------


def test_cross_site_writes_are_refused(alice: TestClient, client: TestClient) -> None:
    body = '{"node_id": "node-a", "gpu_count": 1}'
    form = alice.post(
        "/api/v1/jobs", content=body, headers={"Content-Type": "text/plain", "Authorization": ""}
    )
    assert form.status_code in (401, 415)
    foreign = {"Origin": "http://evil.example"}
    assert alice.post("/api/v1/jobs", json={"command": ["x"]}, headers=foreign).status_code == 403
    referer = {"Referer": "http://evil.example/page"}
    assert alice.post("/api/v1/jobs", json={"command": ["x"]}, headers=referer).status_code == 403
    sandboxed = {"Origin": "null"}
    assert alice.post("/api/v1/jobs", json={"command": ["x"]}, headers=sandboxed).status_code == 403
    same = {"Origin": "http://testserver"}
    assert alice.post("/api/v1/jobs", json={"command": ["x"]}, headers=same).status_code == 201
    rebound = client.get("/api/v1/jobs", headers={"Host": "evil.example"})
    assert rebound.status_code == 400 and rebound.json()["code"] == "unknown_host"


def test_a_session_cookie_cannot_post_a_form(client: TestClient, anon: TestClient) -> None:
    client.post("/api/v1/users", json={"name": "kim", "password": "long enough pw"})
    anon.post("/api/v1/session", json={"user": "kim", "password": "long enough pw"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {} if content_type is None else {"Content-Type": content_type}
        sent = anon.post("/api/v1/tenants", content=b'{"name": "x"}', headers=headers)
        assert sent.status_code == 415, content_type


def test_a_stale_session_cookie_is_401_not_the_machines_user(
    composed: Composed, client: TestClient
) -> None:
    """A page whose session ended must not go on as whoever the connection belongs to."""
    with TestClient(composed.app, cookies={"procplan_session": "pp_" + "x" * 43}) as stale:
        answer = stale.get("/api/v1/me")
        assert answer.status_code == 401 and answer.json()["code"] == "session_expired"
        assert stale.get("/api/v1/calendar").status_code != 401  # public views still answer


def test_open_compatibility_writes_act_as_anonymous_only(
    composed: Composed, alice: TestClient, anon: TestClient
) -> None:
    """``compat_writes = "open"``: ProcPlan's notifier and the Go API write without identity,
    as the shared user ``anonymous``, who changes nothing of anyone else's."""
    composed.app.state.identity = replace(composed.app.state.identity, open_compat_writes=True)
    body = {
        "node_id": NODE,
        "start": iso(FIXED_NOW + HOUR),
        "end": iso(FIXED_NOW + 2 * HOUR),
        "user_label": "AB",
        "gpu_count": 1,
    }
    made = anon.post("/api/book", json=body)
    assert made.status_code == 201, made.text
    booking_id = made.json()["booking_id"]
    assert anon.get(f"/api/v1/bookings/{booking_id}").json()["user"] == "anonymous"
    assert anon.post("/api/mark_done", json={"booking_id": booking_id}).status_code == 200
    theirs = book(alice)
    assert anon.delete(f"/api/bookings/{theirs['id']}").status_code == 403
    job = anon.post("/api/v1/jobs", json={"command": ["true"], "gpu_count": 0})
    assert job.status_code == 201 and job.json()["job"]["user"] == "anonymous"
    assert anon.post("/api/v1/bookings", json={**body, "label": "x"}).status_code == 401
    assert anon.post("/api/v1/tenants", json={"name": "t"}).status_code == 401


def test_password_guessing_gets_429(client: TestClient, anon: TestClient) -> None:
    client.post("/api/v1/users", json={"name": "lena", "password": "long enough pw"})
    for _ in range(5):
        wrong = anon.post("/api/v1/session", json={"user": "lena", "password": "guess guess"})
        assert wrong.status_code == 401
    stopped = anon.post("/api/v1/session", json={"user": "lena", "password": "long enough pw"})
    assert stopped.status_code == 429 and stopped.json()["code"] == "too_many_attempts"
