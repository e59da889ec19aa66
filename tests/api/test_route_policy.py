"""Every route has a policy in one table (issue #12), and each policy holds when tried.

The table and the app are checked against each other in both directions; then every route
that is not public is called with no credentials and must answer 401 before it reads
anything, and every admin route must answer 403 to a plain user.
"""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI
from starlette.testclient import TestClient
from tests.conftest import signed_in

from procplan.api.policy import POLICIES, PolicedRoute, app_routes, check_policies
from procplan.core.identity import Policy
from procplan.server import Composed


def served_routes(composed: Composed) -> set[tuple[str, str]]:
    return {(method, path) for method, path, _route in app_routes(composed.app.router.routes)}


def test_every_route_has_a_policy_and_every_policy_a_route(composed: Composed) -> None:
    served = served_routes(composed) - {("GET", "/")}
    assert served <= set(POLICIES), f"routes without a policy: {served - set(POLICIES)}"
    assert set(POLICIES) <= served, f"policies of no route: {set(POLICIES) - served}"


def test_a_route_without_a_policy_cannot_be_declared() -> None:
    router = APIRouter(route_class=PolicedRoute)

    async def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(LookupError, match="GET /api/v1/forgotten has no policy"):
        router.get("/api/v1/forgotten")(forgotten)


def test_an_unpoliced_route_class_is_refused() -> None:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/api/v1/me")  # in the table, but a plain APIRoute enforces nothing
    async def me() -> dict[str, str]:
        return {}

    with pytest.raises(LookupError, match="not a PolicedRoute"):
        check_policies(app.router.routes)


def concrete(path: str) -> str:
    """A path template with every parameter filled (ids that may exist)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def test_nobody_reaches_a_protected_route(composed: Composed) -> None:
    with TestClient(composed.app) as anon:
        for (method, path), policy in POLICIES.items():
            if policy in (Policy.PUBLIC, Policy.AGENT, Policy.FEED):
                continue
            answer = anon.request(method, concrete(path), json={})
            assert answer.status_code == 401, (method, path, answer.text)


def test_feed_routes_want_the_feed_secret_not_a_session(composed: Composed) -> None:
    """``Policy.FEED`` (ADR 0022): a signed-in user's token or none, a wrong secret or an API
    token in its place all get the same 404 as a path that does not exist."""
    feeds = [path for (_m, path), policy in POLICIES.items() if policy is Policy.FEED]
    assert feeds
    with signed_in(composed, "mallory") as mallory, TestClient(composed.app) as anon:
        missing = anon.get("/api/v1/no-such-route").json()
        bearer = mallory.headers["Authorization"].removeprefix("Bearer ")
        for path in feeds:
            for client, query in (
                (anon, ""),
                (mallory, ""),
                (anon, "?token=ppf_x"),
                (anon, f"?token={bearer}"),
            ):
                answer = client.get(concrete(path) + query)
                assert answer.status_code == 404, (path, query, answer.text)
                assert answer.json() == missing


def test_agent_routes_want_the_agent_token(composed: Composed) -> None:
    with signed_in(composed, "mallory") as mallory:
        for (method, path), policy in POLICIES.items():
            if policy is Policy.AGENT:
                answer = mallory.request(method, concrete(path), json={})
                assert answer.status_code == 401, (method, path, answer.text)


def test_plain_users_reach_no_admin_route(composed: Composed) -> None:
    with signed_in(composed, "mallory") as mallory:
        for (method, path), policy in POLICIES.items():
            if policy not in (Policy.ADMIN, Policy.TENANT_MANAGER):
                continue
            answer = mallory.request(method, concrete(path), json={})
            assert answer.status_code == 403, (method, path, answer.text)
