"""Native booking routes: list/get/create/patch/release/cancel, minute precision, 409s."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from procplan.api.boundary import body_doc, query_doc, read_body, read_query
from procplan.api.deps import ctx, known_booking_id
from procplan.api.identity import principal
from procplan.api.models.bookings import BookingCreate, BookingListQuery, BookingPatch
from procplan.api.models.fields import INT64_MAX, INT64_MIN
from procplan.api.ownership import acting, audit, owner_check, owner_name
from procplan.api.policy import PolicedRoute
from procplan.api.responses import json_response, render_each
from procplan.api.threads import run_in_threadpool
from procplan.core.booking_edit import BookingEdit
from procplan.core.identity import Principal
from procplan.core.ledger import BookingConflict
from procplan.core.model import Booking, BookingRequest
from procplan.store.bookings_repo import BookingFilter
from procplan.wire.bookings import (
    booking_conflict,
    booking_created,
    booking_edited,
    booking_preview,
    booking_v1,
    bookings_page,
    preempted_json,
    weekly_json,
    weekly_refused,
)

router = APIRouter(prefix="/api/v1", tags=["bookings"], route_class=PolicedRoute)

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
    return json_response(bookings_page(render_each(rows, booking_v1, "booking"), total))


@router.get("/bookings/{booking_id}")
async def get_booking(request: Request, booking_id: BookingId) -> Response:
    booking = await run_in_threadpool(ctx(request).bookings.get, known(booking_id))
    return json_response(booking_v1(booking))


@router.post("/bookings", status_code=201, openapi_extra=body_doc(BookingCreate, required=True))
async def create_booking(request: Request) -> Response:
    """Book GPUs of one node (rule 4: not over other users' time-limited jobs, 409);
    ``conflicts_with_jobs`` lists the open-ended jobs of others it will preempt when it
    begins (rule 3)."""
    who, req, repeat = await _booking_request(request)
    context = ctx(request)
    if repeat is not None:
        return await _weekly(request, who, req, repeat)
    try:
        booking, preempted = await run_in_threadpool(context.bookings.book, req, whole_hours=False)
    except BookingConflict as refused:
        return json_response(booking_conflict(refused), refused.status)
    audit(request, who, "booking.create", f"booking {booking.id}", req.user, _window(booking))
    grace_s = context.jobs.settings.policy.preempt_grace_s
    conflicts = [preempted_json(job, booking, grace_s) for job in preempted]
    return json_response(booking_created(booking, conflicts), 201)


@router.post("/bookings/check", openapi_extra=body_doc(BookingCreate, required=True))
async def check_booking(request: Request) -> Response:
    """What ``POST /api/v1/bookings`` with this body would do now, without booking: the GPUs
    it would take and ``conflicts_with_jobs`` (200), or the same 4xx it would answer."""
    _who, req, repeat = await _booking_request(request)
    context = ctx(request)
    if repeat is not None:
        return await _weekly(request, _who, req, (repeat[0], True))
    try:
        preview = await run_in_threadpool(context.bookings.preview, req, whole_hours=False)
    except BookingConflict as refused:
        return json_response(booking_conflict(refused), refused.status)
    return json_response(booking_preview(preview, context.jobs.settings.policy.preempt_grace_s))


async def _weekly(
    request: Request, who: Principal, req: BookingRequest, repeat: tuple[int, bool]
) -> Response:
    """A weekly series: 201 with every booking, 409 ``series_conflict`` listing every refused
    occurrence (nothing booked), or with ``dry_run`` 200 with both lists, nothing booked."""
    until, dry_run = repeat
    context = ctx(request)
    book = partial(context.bookings.book_weekly, write=not dry_run)
    series = await run_in_threadpool(book, req, until)
    grace_s = context.jobs.settings.policy.preempt_grace_s
    body = weekly_json(series, grace_s)
    if dry_run:
        return json_response(body)
    if series.refused:
        return json_response(weekly_refused(series), 409)
    for booking in series.bookings:
        audit(request, who, "booking.create", f"booking {booking.id}", req.user, _window(booking))
    return json_response(body, 201)


async def _booking_request(
    request: Request,
) -> tuple[Principal, BookingRequest, tuple[int, bool] | None]:
    """The caller, the booking they ask for (themselves, or whom an admin books for) and,
    for a weekly series, its ``until`` and ``dry_run``."""
    ask = await read_body(request, BookingCreate)
    who = await acting(request, ask.user)
    user = owner_name(who)
    repeat = None if ask.repeat is None else (ask.repeat.until, ask.dry_run)
    return who, _request(ask, user), repeat


def _request(ask: BookingCreate, user: str) -> BookingRequest:
    return BookingRequest(
        node_id=ask.node_id,
        start=ask.start,
        end=ask.end_instant(),
        user=user,
        label=ask.label or user,
        priority=ask.priority,
        gpu_ids=tuple(ask.gpu_ids) if ask.gpu_ids else None,
        gpu_count=ask.gpu_count,
    )


def _window(booking: Booking) -> str:
    return f"{booking.node_id} {','.join(booking.gpu_ids)} {booking.start}..{booking.end}"


@router.patch("/bookings/{booking_id}", openapi_extra=body_doc(BookingPatch, required=True))
async def patch_booking(request: Request, booking_id: BookingId) -> Response:
    """Edit an active booking (ADR 0024): move or resize it, change its GPUs, label or
    priority. A started booking keeps its start and GPUs (409 ``started``); the new window is
    validated as a new booking is and refused with the same 409 (``gpu_conflict``,
    ``job_conflict`` with holders and ``next_free``); its own claims are not in its way."""
    ask = await read_body(request, BookingPatch)
    who = await principal(request)
    context = ctx(request)
    change = BookingEdit(
        start=ask.start,
        end=ask.end,
        gpu_ids=None if ask.gpu_ids is None else tuple(ask.gpu_ids),
        label=ask.label,
        priority=ask.priority,
    )
    edit = partial(context.bookings.edit, allowed=owner_check(who, "booking"))
    try:
        booking, preempted = await run_in_threadpool(edit, known(booking_id), change)
    except BookingConflict as refused:
        return json_response(booking_conflict(refused), refused.status)
    audit(request, who, "booking.change", f"booking {booking_id}", booking.user, _changes(ask))
    grace_s = context.jobs.settings.policy.preempt_grace_s
    conflicts = [preempted_json(job, booking, grace_s) for job in preempted]
    return json_response(booking_edited(booking, conflicts))


@router.post("/bookings/{booking_id}/release")
async def release_booking(request: Request, booking_id: BookingId) -> Response:
    who = await principal(request)
    release = partial(
        ctx(request).bookings.release,
        whole_hours=False,
        allowed=owner_check(who, "booking"),
        refuse_unstarted=True,
    )
    booking = await run_in_threadpool(release, known(booking_id))
    audit(request, who, "booking.release", f"booking {booking_id}", booking.user)
    return json_response(booking_v1(booking))


@router.post("/bookings/{booking_id}/cancel")
@router.delete("/bookings/{booking_id}")
async def cancel_booking(request: Request, booking_id: BookingId) -> Response:
    who = await principal(request)
    check = owner_check(who, "booking")
    booking = await run_in_threadpool(ctx(request).bookings.cancel, known(booking_id), check)
    audit(request, who, "booking.cancel", f"booking {booking_id}", booking.user)
    return json_response(booking_v1(booking))


def _changes(ask: BookingPatch) -> str:
    """The audit record's detail: the fields asked for, as given (instants as seconds)."""
    given = ask.model_dump(exclude_none=True)
    if ask.priority is not None:
        given["priority"] = ask.priority.label
    return " ".join(f"{key}={value}" for key, value in given.items())
