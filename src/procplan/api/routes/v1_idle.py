"""Idle reclaim's routes (ADR 0013): a booking's idle state, the owner's "keep", and a
tenant's override of the cluster setting (admins)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, StrictBool
from starlette.responses import Response

from procplan.api.boundary import body_doc, read_body
from procplan.api.deps import AppContext, ctx, known_booking_id
from procplan.api.identity import principal
from procplan.api.models.fields import INT64_MAX, INT64_MIN, MAX_NAME
from procplan.api.ownership import audit, owner_check
from procplan.api.policy import PolicedRoute
from procplan.api.responses import json_response
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import NotFound
from procplan.service.idle_reclaim import IdleReclaim
from procplan.wire.idle import idle_json, kept_json

router = APIRouter(prefix="/api/v1", tags=["bookings"], route_class=PolicedRoute)

BookingId = Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX)]
TenantId = Annotated[str, Path(max_length=MAX_NAME)]


class TenantIdleReclaim(BaseModel):
    """``PUT /api/v1/tenants/{id}/idle-reclaim``: on, off, or null (follow the cluster)."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool | None


def _idle(context: AppContext) -> IdleReclaim:
    if context.idle is None:  # pragma: no cover - compose always wires it
        raise NotFound("idle reclaim is not available on this server")
    return context.idle


def _known(booking_id: int) -> int:
    return known_booking_id(booking_id, f"Booking '{booking_id}' does not exist")


@router.get("/bookings/{booking_id}/idle")
async def booking_idle_state(request: Request, booking_id: BookingId) -> Response:
    """Whether the booking's GPUs are idle, since when, warned when, released when (and
    why), and whether its owner kept it."""
    context = ctx(request)
    idle = _idle(context)
    booking = await run_in_threadpool(context.bookings.get, _known(booking_id))
    state = await run_in_threadpool(idle.state, booking.id)
    return json_response(idle_json(booking.id, state, idle.settings, active=booking.is_active))


@router.post("/bookings/{booking_id}/keep")
async def keep_booking(request: Request, booking_id: BookingId) -> Response:
    """The owner's (or an admin's) answer to the idle warning: never reclaim this booking."""
    who = await principal(request)
    idle = _idle(ctx(request))
    keep = partial(idle.keep, allowed=owner_check(who, "booking"))
    booking, state = await run_in_threadpool(keep, _known(booking_id))
    audit(request, who, "booking.keep", f"booking {booking_id}", booking.user)
    return json_response(kept_json(booking, state, idle.settings))


@router.put(
    "/tenants/{tenant_id}/idle-reclaim", openapi_extra=body_doc(TenantIdleReclaim, required=True)
)
async def tenant_idle_reclaim(request: Request, tenant_id: TenantId) -> Response:
    """Turn idle reclaim on or off for a tenant's members' bookings (null: the cluster's)."""
    ask = await read_body(request, TenantIdleReclaim)
    who = await principal(request)
    idle = _idle(ctx(request))
    await run_in_threadpool(idle.set_tenant, tenant_id, ask.enabled)
    audit(request, who, "tenant.idle_reclaim", f"tenant {tenant_id}", None, f"{ask.enabled}")
    return json_response({"tenant_id": tenant_id, "idle_reclaim": ask.enabled})
