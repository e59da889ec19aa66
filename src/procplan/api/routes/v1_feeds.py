"""Calendar feeds (issue #17, ADR 0022): iCalendar views of bookings for calendar apps.

``POST /api/v1/feeds`` gives the signed-in user a new feed secret (shown once, inside the
URLs) and revokes their older one; ``DELETE`` revokes it. The ``.ics`` routes prove nothing
but that secret (``Policy.FEED``): a missing, wrong or revoked one answers the same 404 as a
path that does not exist, so the answer tells nothing about users or secrets.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from procplan.api.boundary import query_doc, read_query
from procplan.api.deps import AppContext, ctx
from procplan.api.identity import principal
from procplan.api.models.bookings_feeds import FeedQuery
from procplan.api.models.fields import MAX_NAME
from procplan.api.policy import PolicedRoute
from procplan.api.responses import json_response
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import NotFound, Unauthorized
from procplan.service.feeds import FeedService
from procplan.wire.ical import calendar_text

router = APIRouter(prefix="/api/v1", tags=["feeds"], route_class=PolicedRoute)

ICS_TYPE = "text/calendar; charset=utf-8"
NodeId = Annotated[str, Path(max_length=MAX_NAME)]


def _feeds(context: AppContext) -> FeedService:
    return FeedService(context.accounts.store, context.bookings)


def _signed_in_name(name: str | None) -> str:
    if name is None:  # pragma: no cover - the AUTHENTICATED policy refused already
        raise Unauthorized("sign in first", code="unauthenticated")
    return name


@router.post("/feeds", status_code=201)
async def create_feed(request: Request) -> Response:
    """A new feed secret for you, inside the feed URLs (shown once); your older one stops."""
    who = await principal(request)
    user = _signed_in_name(who.name)
    context = ctx(request)
    secret, made = await run_in_threadpool(_feeds(context).create, user)
    context.audit.record(who, "feed.create", f"user {user}", user)
    base = str(request.base_url).rstrip("/") + "/api/v1/feeds"
    body = {
        "id": made.id,
        "user": user,
        "url": f"{base}/user.ics?token={secret}",
        "node_url": f"{base}/nodes/{{node_id}}.ics?token={secret}",
    }
    return json_response(body, 201)


@router.delete("/feeds")
async def revoke_feed(request: Request) -> Response:
    """Revoke your feed secret: calendar apps subscribed to it get 404 from now on."""
    who = await principal(request)
    user = _signed_in_name(who.name)
    context = ctx(request)
    revoked = await run_in_threadpool(_feeds(context).revoke, user)
    context.audit.record(who, "feed.revoke", f"user {user}", user)
    return json_response({"user": user, "revoked": revoked})


def _owner_or_404(feeds: FeedService, request: Request) -> str:
    secret = read_query(request, FeedQuery).token
    owner = feeds.owner(secret)
    if owner is None:
        raise NotFound("Not found", code="not_found")
    return owner


def _ics(text: str) -> Response:
    headers = {"Cache-Control": "private, max-age=300", "Referrer-Policy": "no-referrer"}
    return Response(text.encode("utf-8"), media_type=ICS_TYPE, headers=headers)


@router.get("/feeds/user.ics", openapi_extra=query_doc(FeedQuery))
async def user_feed(request: Request) -> Response:
    """The feed secret's owner's bookings (60 days back, 400 ahead) as iCalendar."""
    context = ctx(request)
    feeds = _feeds(context)

    def build() -> str:
        owner = _owner_or_404(feeds, request)
        rows = feeds.user_bookings(owner)
        return calendar_text(
            f"ProcPlan: {owner}",
            rows,
            request.url.hostname or "procplan",
            feeds.bookings.clock.now(),
        )

    return _ics(await run_in_threadpool(build))


@router.get("/feeds/nodes/{node_id}.ics", openapi_extra=query_doc(FeedQuery))
async def node_feed(request: Request, node_id: NodeId) -> Response:
    """A node's bookings as iCalendar, for the owner of a feed secret (bookings, labels and
    users are what the public calendar shows; jobs are not in feeds)."""
    context = ctx(request)
    feeds = _feeds(context)

    def build() -> str:
        _owner_or_404(feeds, request)
        if context.bookings.topology().node(node_id) is None:
            raise NotFound(f"Unknown node id '{node_id}'", code="unknown_node")
        rows = feeds.node_bookings(node_id)
        host = request.url.hostname or "procplan"
        return calendar_text(f"ProcPlan: {node_id}", rows, host, feeds.bookings.clock.now())

    return _ics(await run_in_threadpool(build))
