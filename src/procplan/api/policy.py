"""Every route's policy, in one table (issue #12, ADR 0009).

``POLICIES`` maps each route — method and path template — to what it requires
(``core.identity.Policy``). Routers are built with ``PolicedRoute``, which looks its route up
here when the app is assembled (a route missing from the table stops the server from
starting) and enforces the policy before the route's own code runs.
``tests/api/test_route_policy.py`` checks the table against the app in both directions.

Owner checks need the object, so ``OWNER`` routes prove that someone is signed in here and
call ``core.identity.may_change`` with the booking's or job's owner themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from procplan.api.identity import identity_config
from procplan.api.identity import principal as principal_of
from procplan.core.identity import OPEN_COMPAT, Policy, Principal, require

P = Policy
POLICIES: dict[tuple[str, str], Policy] = {
    # ---- ProcPlan 1.0 (COMPAT §1): reads are the shared calendar, writes are its notifier's
    ("GET", "/api/nodes"): P.PUBLIC,
    ("GET", "/api/availability"): P.PUBLIC,
    ("POST", "/api/availability_bulk"): P.PUBLIC,  # a read sent as POST
    ("POST", "/api/book"): P.COMPAT_WRITE,
    ("POST", "/api/mark_done"): P.COMPAT_WRITE,
    ("DELETE", "/api/bookings"): P.COMPAT_WRITE,  # answers "Booking id is required"
    ("DELETE", "/api/bookings/"): P.COMPAT_WRITE,
    ("DELETE", "/api/bookings/{raw_id}"): P.COMPAT_WRITE,
    ("POST", "/api/reload_config"): P.ADMIN,
    # ---- local-gpu-scheduler (COMPAT §2): /acquire names a PID of the caller's own
    ("POST", "/acquire"): P.AUTHENTICATED,
    ("GET", "/status"): P.PUBLIC,
    ("GET", "/jobs"): P.PUBLIC,
    # ---- bookings
    ("GET", "/api/v1/bookings"): P.PUBLIC,
    ("GET", "/api/v1/bookings/{booking_id}"): P.PUBLIC,
    ("POST", "/api/v1/bookings"): P.AUTHENTICATED,
    ("POST", "/api/v1/bookings/check"): P.AUTHENTICATED,
    ("PATCH", "/api/v1/bookings/{booking_id}"): P.OWNER,
    ("POST", "/api/v1/bookings/{booking_id}/release"): P.OWNER,
    ("POST", "/api/v1/bookings/{booking_id}/cancel"): P.OWNER,
    ("DELETE", "/api/v1/bookings/{booking_id}"): P.OWNER,
    # idle reclaim (ADR 0013): the state is public like the booking; "keep" is the owner's
    ("GET", "/api/v1/bookings/{booking_id}/idle"): P.PUBLIC,
    ("POST", "/api/v1/bookings/{booking_id}/keep"): P.OWNER,
    ("PUT", "/api/v1/tenants/{tenant_id}/idle-reclaim"): P.ADMIN,
    # calendar feeds (ADR 0022): the signed-in user makes or revokes their feed secret;
    # calendar apps send no headers, so the feeds themselves prove the secret in the URL
    ("POST", "/api/v1/feeds"): P.AUTHENTICATED,
    ("DELETE", "/api/v1/feeds"): P.AUTHENTICATED,
    ("GET", "/api/v1/feeds/user.ics"): P.FEED,
    ("GET", "/api/v1/feeds/nodes/{node_id}.ics"): P.FEED,
    # ---- the cluster
    ("GET", "/api/v1/calendar"): P.PUBLIC,
    ("GET", "/health"): P.PUBLIC,
    ("GET", "/api/v1/cluster/status"): P.PUBLIC,
    ("GET", "/metrics"): P.PUBLIC,
    # ---- jobs (the Go scheduler's dialect too, COMPAT §3); env and logs are the owner's
    ("POST", "/api/v1/jobs"): P.COMPAT_WRITE,
    ("GET", "/api/v1/jobs"): P.PUBLIC,
    ("GET", "/api/v1/jobs/{raw_id}"): P.PUBLIC,
    ("GET", "/api/v1/jobs/{raw_id}/wait"): P.OWNER,  # renews the lease
    ("POST", "/api/v1/jobs/{raw_id}/heartbeat"): P.OWNER,
    ("POST", "/api/v1/jobs/{raw_id}/release"): P.OWNER,
    ("DELETE", "/api/v1/jobs/{raw_id}"): P.COMPAT_WRITE,
    ("GET", "/api/v1/jobs/{job_id}/logs"): P.OWNER,
    ("GET", "/api/v1/queue/priority"): P.PUBLIC,  # sprio: what the job list shows, ranked
    # ---- nodes
    ("GET", "/api/v1/nodes"): P.PUBLIC,
    ("GET", "/api/v1/nodes/{node_id}"): P.PUBLIC,
    ("GET", "/api/v1/nodes/{node_id}/history"): P.PUBLIC,
    # node maintenance (ADR 0020): what the cluster may run is the admins' decision
    ("POST", "/api/v1/nodes/{node_id}/drain"): P.ADMIN,
    ("POST", "/api/v1/nodes/{node_id}/resume"): P.ADMIN,
    ("POST", "/api/v1/nodes/{node_id}/remove"): P.ADMIN,
    # ---- usage accounting (issue #14): the report like sreport, for everyone signed in
    ("GET", "/api/v1/usage/report"): P.AUTHENTICATED,
    ("GET", "/api/v1/usage/daily"): P.AUTHENTICATED,
    ("GET", "/api/v1/usage/jobs"): P.PUBLIC,  # what the job list shows, plus GPU time
    ("GET", "/api/v1/jobs/{raw_id}/usage"): P.PUBLIC,  # node history, per job
    ("GET", "/api/v1/bookings/{booking_id}/usage"): P.PUBLIC,  # as the booking itself
    # ---- tenants: admins create them; managers run their members and quotas
    ("POST", "/api/v1/tenants"): P.ADMIN,
    ("GET", "/api/v1/tenants"): P.PUBLIC,
    ("GET", "/api/v1/tenants/{tenant_id}"): P.PUBLIC,
    ("PATCH", "/api/v1/tenants/{tenant_id}"): P.TENANT_MANAGER,
    ("PUT", "/api/v1/tenants/{tenant_id}/members/{user}"): P.TENANT_MANAGER,
    ("DELETE", "/api/v1/tenants/{tenant_id}/members/{user}"): P.TENANT_MANAGER,
    # ---- agents: the cluster token, checked before anything else is read
    ("POST", "/api/v1/agents/register"): P.AGENT,
    ("POST", "/api/v1/agents/{node_id}/heartbeat"): P.AGENT,
    ("GET", "/api/v1/agents/{node_id}/jobs"): P.AGENT,
    ("POST", "/api/v1/agents/{node_id}/events"): P.AGENT,
    ("POST", "/api/v1/agents/{node_id}/jobs/{job_id}/logs"): P.AGENT,
    # ---- identity
    ("GET", "/api/v1/me"): P.PUBLIC,
    ("POST", "/api/v1/session"): P.PUBLIC,  # signing in
    ("DELETE", "/api/v1/session"): P.PUBLIC,  # signing out
    ("GET", "/api/v1/users"): P.ADMIN,
    ("POST", "/api/v1/users"): P.ADMIN,
    ("GET", "/api/v1/users/{name}"): P.AUTHENTICATED,  # yourself, or anyone as an admin
    ("PATCH", "/api/v1/users/{name}"): P.AUTHENTICATED,  # your password; the rest: admins
    ("DELETE", "/api/v1/users/{name}"): P.ADMIN,
    ("POST", "/api/v1/users/{name}/login-link"): P.ADMIN,
    # notification channels: yours, or (admins) anyone's and the cluster's
    ("GET", "/api/v1/notify/channels"): P.AUTHENTICATED,
    ("POST", "/api/v1/notify/channels"): P.AUTHENTICATED,
    ("POST", "/api/v1/notify/channels/{channel_id}/test"): P.OWNER,
    ("DELETE", "/api/v1/notify/channels/{channel_id}"): P.OWNER,
    ("GET", "/api/v1/tokens"): P.AUTHENTICATED,
    ("POST", "/api/v1/tokens"): P.AUTHENTICATED,
    ("DELETE", "/api/v1/tokens/{token_id}"): P.AUTHENTICATED,  # yours, or anyone's as admin
    ("GET", "/api/v1/audit"): P.AUTHENTICATED,  # your own entries; admins: all
    # ---- documentation (FastAPI's own routes)
    ("GET", "/openapi.json"): P.PUBLIC,
    ("GET", "/docs"): P.PUBLIC,
    ("GET", "/docs/oauth2-redirect"): P.PUBLIC,
    ("GET", "/redoc"): P.PUBLIC,
}
# The web UI's static files (the mount at "/") are public: the pages ask the API who you are.
# So are the documentation pages' scripts and styles (Swagger UI, ReDoc) under DOCS_ASSETS.
STATIC_POLICY = P.PUBLIC
DOCS_ASSETS = "/static-docs"


def app_routes(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str, BaseRoute]]:
    """Every (method, path, route) the app serves, included routers' routes too (HEAD, which
    Starlette adds to every GET, aside)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from app_routes(included.routes)
            continue
        path = getattr(route, "path", None)
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD" and path is not None:
                yield method, path, route


def check_policies(routes: Iterable[BaseRoute]) -> None:
    """Refuse to build an app with a route outside the table, or an API route that does not
    enforce it (not a ``PolicedRoute``)."""
    for method, path, route in app_routes(routes):
        policy_for(method, path)
        if isinstance(route, APIRoute) and not isinstance(route, PolicedRoute):
            raise LookupError(f"route {method} {path} is not a PolicedRoute")


def policy_for(method: str, path: str) -> Policy:
    try:
        return POLICIES[(method, path)]
    except KeyError:
        raise LookupError(
            f"route {method} {path} has no policy: add it to procplan.api.policy.POLICIES"
        ) from None


async def enforce(request: Request, policy: Policy) -> Principal | None:
    """Refuse what ``policy`` forbids; returns the principal when it had to be resolved."""
    if policy in (P.PUBLIC, P.AGENT, P.FEED):
        return None
    principal = await principal_of(request)
    opened = identity_config(request).open_compat_writes
    if policy is P.COMPAT_WRITE and not principal.proven and opened:
        request.scope["procplan.principal"] = OPEN_COMPAT
        return OPEN_COMPAT
    tenant_id = request.path_params.get("tenant_id")
    require(principal, policy, tenant_id if isinstance(tenant_id, str) else None)
    return principal


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PolicedRoute(APIRoute):
    """An ``APIRoute`` that enforces its entry of ``POLICIES`` before its handler runs."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        (method,) = self.methods or {"GET"}
        policy = policy_for(method, self.path)
        if policy in (P.PUBLIC, P.AGENT, P.FEED):
            return handler

        async def policed(request: Request) -> Response:
            await enforce(request, policy)
            return await handler(request)

        return policed
