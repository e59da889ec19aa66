"""Native booking routes: list/get/create/patch/release/cancel, minute precision, 409s."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from procplan.api.boundary import body_doc, query_doc, read_body, read_query
from procplan.api.deps import ctx, known_booking_id, request_user
from procplan.api.models.bookings import BookingCreate, BookingListQuery, BookingPatch
from procplan.api.models.fields import INT64_MAX, INT64_MIN
from procplan.api.responses import json_response, render_each
from procplan.api.schemas import booking_v1
from procplan.core.errors import InvalidRequest
from procplan.core.model import BookingRequest
from procplan.store.bookings_repo import BookingFilter

router = APIRouter(prefix="/api/v1", tags=["bookings"])

# Ids outside the databases' integer range are a 400 (validation), not an overflow (500);
# inside it but outside the ids' column, a 404 (``known``).
BookingId = Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX)]


def known(booking_id: int) -> int:
    return known_booking_id(booking_id, f"Booking '{booking_id}' does not exist")


@router.get("/bookings", openapi_extra=query_doc(BookingListQuery))
async def list_bookings(request: Request) -> Response:
    """Bookings newest first; ``start``/``end`` keep those overlapping the window."""
    ask = read_query(request, BookingListQuery)
    flt = BookingFilter(
        node_id=ask.node,
        gpu_id=ask.gpu,
        user=ask.user,
        status=ask.status,
        start=ask.start,
        end=ask.end,
        limit=ask.limit,
        offset=ask.offset,
    )
    rows, total = await run_in_threadpool(ctx(request).bookings.list, flt)
    return json_response({"bookings": render_each(rows, booking_v1, "booking"), "total": total})


@router.get("/bookings/{booking_id}")
async def get_booking(request: Request, booking_id: BookingId) -> Response:
    booking = await run_in_threadpool(ctx(request).bookings.get, known(booking_id))
    return json_response(booking_v1(booking))


@router.post("/bookings", status_code=201, openapi_extra=body_doc(BookingCreate, required=True))
async def create_booking(request: Request) -> Response:
    """Book GPUs of one node; ``conflicts_with_jobs`` lists running jobs it will preempt."""
    ask = await read_body(request, BookingCreate)
    user = ask.user or request_user(request)
    if not user:
        raise InvalidRequest(
            "user is required: send the X-ProcPlan-User header or a 'user' field",
            code="missing_user",
        )
    req = BookingRequest(
        node_id=ask.node_id,
        start=ask.start,
        end=ask.end_instant(),
        user=user,
        label=ask.label or user,
        priority=ask.priority,
        gpu_ids=tuple(ask.gpu_ids) if ask.gpu_ids else None,
        gpu_count=ask.gpu_count,
    )
    booking = await run_in_threadpool(ctx(request).bookings.create, req, whole_hours=False)
    return json_response({"booking": booking_v1(booking), "conflicts_with_jobs": []}, 201)


@router.patch("/bookings/{booking_id}", openapi_extra=body_doc(BookingPatch, required=True))
async def patch_booking(request: Request, booking_id: BookingId) -> Response:
    ask = await read_body(request, BookingPatch)
    service = ctx(request).bookings
    booking = await run_in_threadpool(service.change_end, known(booking_id), ask.end)
    return json_response(booking_v1(booking))


@router.post("/bookings/{booking_id}/release")
async def release_booking(request: Request, booking_id: BookingId) -> Response:
    booking = await run_in_threadpool(
        ctx(request).bookings.release, known(booking_id), whole_hours=False
    )
    return json_response(booking_v1(booking))


@router.post("/bookings/{booking_id}/cancel")
@router.delete("/bookings/{booking_id}")
async def cancel_booking(request: Request, booking_id: BookingId) -> Response:
    booking = await run_in_threadpool(ctx(request).bookings.cancel, known(booking_id))
    return json_response(booking_v1(booking))
