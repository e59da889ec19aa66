"""Notification channels (issue #14, ADR 0012): each signed-in user manages their own; admins
see everyone's and set the cluster's. The answer never carries a channel's whole URL."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from procplan.api.boundary import body_doc, read_body
from procplan.api.deps import ctx
from procplan.api.identity import principal
from procplan.api.models.fields import INT32_MAX
from procplan.api.models.notify import ChannelCreate
from procplan.api.policy import PolicedRoute
from procplan.api.responses import json_response
from procplan.api.threads import run_in_threadpool
from procplan.service.notify import NotifyService
from procplan.store.channels_repo import Channel
from procplan.wire.base import Json
from procplan.wire.notify import channel_json, channels_json

router = APIRouter(prefix="/api/v1/notify", tags=["notifications"], route_class=PolicedRoute)
ChannelId = Annotated[int, Path(ge=1, le=INT32_MAX)]


def _json(channel: Channel) -> Json:
    return channel_json(
        channel.id, channel.user, channel.url, channel.events, channel.label,
        channel.created_at, channel.last_sent_at, channel.last_error, channel.last_error_at,
    )  # fmt: skip


def _service(request: Request) -> NotifyService:
    service = ctx(request).notify
    assert service is not None  # composed with the app
    return service


@router.get("/channels")
async def list_channels(request: Request) -> Response:
    """Your channels, each with its last delivery's outcome; an admin's list is everyone's."""
    who = await principal(request)
    found = await run_in_threadpool(_service(request).list, who)
    return json_response(channels_json([_json(c) for c in found]))


@router.post("/channels", status_code=201, openapi_extra=body_doc(ChannelCreate, required=True))
async def add_channel(request: Request) -> Response:
    ask = await read_body(request, ChannelCreate)
    who = await principal(request)
    made = await run_in_threadpool(
        _service(request).add, who, ask.url, ask.events, ask.label, cluster=ask.cluster
    )
    ctx(request).audit.record(who, "notify.add", f"channel {made.id}", made.user, made.label)
    return json_response(_json(made), 201)


@router.post("/channels/{channel_id}/test")
async def test_channel(request: Request, channel_id: ChannelId) -> Response:
    """Send a test message now and answer with the outcome (``error`` null when it went)."""
    who = await principal(request)
    channel, error = await run_in_threadpool(_service(request).test, who, channel_id)
    return json_response({**_json(channel), "sent": error is None, "error": error})


@router.delete("/channels/{channel_id}")
async def remove_channel(request: Request, channel_id: ChannelId) -> Response:
    who = await principal(request)
    gone = await run_in_threadpool(_service(request).remove, who, channel_id)
    ctx(request).audit.record(who, "notify.remove", f"channel {channel_id}", gone.user)
    return json_response({**_json(gone), "removed": True})
