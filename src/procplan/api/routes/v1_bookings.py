"""Native booking routes: list/get/create/patch/release/cancel, minute precision, 409s."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from procplan.api.deps import SQL_INT_MAX, ctx, parse_time, request_user
from procplan.api.responses import json_response
from procplan.api.schemas import BookingCreate, BookingPatch, booking_v1
from procplan.core.errors import InvalidRequest
from procplan.core.model import BookingRequest, BookingStatus, Priority
from procplan.core.timeutil import MINUTE
from procplan.store.bookings_repo import BookingFilter

router = APIRouter(prefix="/api/v1", tags=["bookings"])

# Ids outside the databases' integer range are a 400 (validation), not an overflow (500).
BookingId = Annotated[int, Path(ge=-SQL_INT_MAX - 1, le=SQL_INT_MAX)]


def _priority(value: str) -> Priority:
    try:
        return Priority.parse(value)
    except ValueError as exc:
        raise InvalidRequest(str(exc), code="invalid_priority") from exc


def _status(value: str | None) -> BookingStatus | None:
    if value is None:
        return None
    try:
        return BookingStatus(value.strip().lower())
    except ValueError as exc:
        raise InvalidRequest(
            "status must be one of active, completed, cancelled", code="invalid_status"
        ) from exc


@router.get("/bookings")
async def list_bookings(
    request: Request,
    node: str | None = None,
    gpu: str | None = None,
    user: str | None = None,
    status: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
) -> Response:
    """Bookings newest first; ``start``/``end`` keep those overlapping the window."""
    flt = BookingFilter(
        node_id=node,
        gpu_id=gpu,
        user=user,
        status=_status(status),
        start=None if start is None else parse_time(start, "start: "),
        end=None if end is None else parse_time(end, "end: "),
        limit=limit,
        offset=offset,
    )
    rows, total = await run_in_threadpool(ctx(request).bookings.list, flt)
    return json_response({"bookings": [booking_v1(b) for b in rows], "total": total})


@router.get("/bookings/{booking_id}")
async def get_booking(request: Request, booking_id: BookingId) -> Response:
    booking = await run_in_threadpool(ctx(request).bookings.get, booking_id)
    return json_response(booking_v1(booking))


@router.post("/bookings", status_code=201)
async def create_booking(request: Request, body: BookingCreate) -> Response:
    """Book GPUs of one node; ``conflicts_with_jobs`` lists running jobs it will preempt."""
    user = body.user or request_user(request)
    if not user:
        raise InvalidRequest(
            "user is required: send the X-ProcPlan-User header or a 'user' field",
            code="missing_user",
        )
    start = parse_time(body.start, "start: ")
    if (body.end is None) == (body.duration_minutes is None):
        raise InvalidRequest("give exactly one of 'end' and 'duration_minutes'")
    end = (
        parse_time(body.end, "end: ")
        if body.end is not None
        else start + (body.duration_minutes or 0) * MINUTE
    )
    req = BookingRequest(
        node_id=body.node_id,
        start=start,
        end=end,
        user=user,
        label=(body.label or user).strip(),
        priority=_priority(body.priority),
        gpu_ids=tuple(body.gpu_ids) if body.gpu_ids else None,
        gpu_count=body.gpu_count,
    )
    booking = await run_in_threadpool(ctx(request).bookings.create, req, whole_hours=False)
    return json_response({"booking": booking_v1(booking), "conflicts_with_jobs": []}, 201)


@router.patch("/bookings/{booking_id}")
async def patch_booking(request: Request, booking_id: BookingId, body: BookingPatch) -> Response:
    new_end = parse_time(body.end, "end: ")
    booking = await run_in_threadpool(ctx(request).bookings.change_end, booking_id, new_end)
    return json_response(booking_v1(booking))


@router.post("/bookings/{booking_id}/release")
async def release_booking(request: Request, booking_id: BookingId) -> Response:
    booking = await run_in_threadpool(ctx(request).bookings.release, booking_id, whole_hours=False)
    return json_response(booking_v1(booking))


@router.post("/bookings/{booking_id}/cancel")
@router.delete("/bookings/{booking_id}")
async def cancel_booking(request: Request, booking_id: BookingId) -> Response:
    booking = await run_in_threadpool(ctx(request).bookings.cancel, booking_id)
    return json_response(booking_v1(booking))
