"""ProcPlan-compatible routes (COMPAT.md section 1): same paths, shapes and messages.

Differences are the listed fixes: 400 instead of 409 or 500, strict integers, unknown node
ids rejected in bulk, validation of the config before an atomic swap on reload.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request
from starlette.responses import Response

from procplan.api.boundary import body_doc, query_doc, read_body, read_query
from procplan.api.deps import AppContext, ctx, known_booking_id
from procplan.api.models.compat import (
    AvailabilityBulkBody,
    AvailabilityQuery,
    BookBody,
    MarkDoneBody,
)
from procplan.api.models.fields import as_int
from procplan.api.ownership import acting, audit, owner_check, owner_name
from procplan.api.policy import PolicedRoute
from procplan.api.responses import json_response
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import DomainError, InvalidRequest
from procplan.core.model import BookingRequest, Priority
from procplan.core.timeutil import Instant
from procplan.service.booking_precheck import refuse_from_mirror
from procplan.service.topology_file import read_topology_file
from procplan.wire.bookings import procplan_booked
from procplan.wire.calendar import availability_grids
from procplan.wire.compat import booking_status, bulk_availability, nodes_json, reload_ok

router = APIRouter(tags=["procplan-compat"], route_class=PolicedRoute)


def _as_400(exc: DomainError) -> InvalidRequest:
    """ProcPlan's clients know 400 for every refusal of a write (no 409)."""
    return InvalidRequest(exc.message, exc.code)


def _window(request: Request, window: tuple[Instant, Instant] | None) -> tuple[Instant, Instant]:
    return window or ctx(request).bookings.default_window()


@router.get("/api/nodes")
async def list_nodes(request: Request) -> Response:
    topology = await run_in_threadpool(ctx(request).bookings.topology)
    return json_response(nodes_json(topology.nodes))


@router.get("/api/availability", openapi_extra=query_doc(AvailabilityQuery))
async def availability(request: Request) -> Response:
    params = read_query(request, AvailabilityQuery)
    start, end = _window(request, params.window())
    view = await run_in_threadpool(
        ctx(request).bookings.availability, params.node_id, start, end, params.granularity
    )
    return json_response(availability_grids(view)[0])


@router.post("/api/availability_bulk", openapi_extra=body_doc(AvailabilityBulkBody))
async def availability_bulk(request: Request) -> Response:
    ask = await read_body(request, AvailabilityBulkBody)
    start, end = _window(request, ask.window())
    service = ctx(request).bookings
    node_ids = ask.node_ids
    if node_ids is None:
        node_ids = [node.id for node in (await run_in_threadpool(service.topology)).nodes]
    view = await run_in_threadpool(service.availability_many, node_ids, start, end, ask.granularity)
    return json_response(bulk_availability(availability_grids(view)))


def _booking_request(user: str, ask: BookBody) -> BookingRequest:
    """The booking belongs to the signed-in user; ``user_label`` is what the calendar shows."""
    start, end = ask.interval()
    label = (ask.user_label or "").strip()
    return BookingRequest(
        node_id=ask.node_id,
        start=start,
        end=end,
        user=user,
        label=label,
        priority=ask.priority or Priority.MEDIUM,
        gpu_ids=tuple(ask.gpu_ids) if ask.gpu_ids else None,
        gpu_count=ask.gpu_count,
    )


@router.post("/api/book", openapi_extra=body_doc(BookBody, required=True))
async def book(request: Request) -> Response:
    ask = await read_body(request, BookBody)
    who = await acting(request)
    req = _booking_request(owner_name(who), ask)
    context = ctx(request)
    try:
        await _refuse_from_mirror(context, req)
        booking = await context.bookings.create_async(req, whole_hours=True)
    except DomainError as exc:
        if exc.status != 409:
            raise  # (no local may keep it: its traceback holds this frame, a reference cycle)
        raise _as_400(exc) from exc
    audit(request, who, "booking.create", f"booking {booking.id}", req.user, req.label)
    return json_response(procplan_booked(booking), status=201)


async def _refuse_from_mirror(context: AppContext, req: BookingRequest) -> None:
    """A refusal the committed bookings already decide is answered from memory, without
    the writer (``service.booking_precheck``, issue #18). On SQLite its one read (the ledger
    version) costs microseconds and runs here; a PostgreSQL round trip goes to a thread."""
    drained = context.nodes.maintenance.drains_as_of if context.nodes is not None else None
    check = partial(refuse_from_mirror, context.bookings, req, whole_hours=True, drained=drained)
    if context.bookings.store.is_sqlite:
        check()
    else:
        await run_in_threadpool(check)


@router.post("/api/mark_done", openapi_extra=body_doc(MarkDoneBody, required=True))
async def mark_done(request: Request) -> Response:
    ask = await read_body(request, MarkDoneBody)
    booking_id = known_booking_id(ask.booking_id)
    who = await acting(request)
    release = partial(
        ctx(request).bookings.release, whole_hours=True, allowed=owner_check(who, "booking")
    )
    done = await run_in_threadpool(release, booking_id)
    audit(request, who, "booking.release", f"booking {booking_id}", done.user)
    return json_response(booking_status(booking_id, "completed"))


@router.delete("/api/bookings")
@router.delete("/api/bookings/")
async def delete_without_id() -> Response:
    raise InvalidRequest("Booking id is required")


@router.delete("/api/bookings/{raw_id}")
async def delete_booking(request: Request, raw_id: str) -> Response:
    number = as_int(raw_id)
    if number is None:
        raise InvalidRequest("Booking id must be an integer")
    booking_id = known_booking_id(number)
    who = await acting(request)
    check = owner_check(who, "booking")
    done = await ctx(request).bookings.cancel_async(booking_id, check)
    audit(request, who, "booking.cancel", f"booking {booking_id}", done.user)
    return json_response(booking_status(booking_id, "cancelled"))


@router.post("/api/reload_config")
async def reload_config(request: Request) -> Response:
    context = ctx(request)
    path = context.config_path
    if path is None:
        raise InvalidRequest("Server was started without --config: there is no file to reload")
    topology = await run_in_threadpool(read_topology_file, path)
    await run_in_threadpool(context.bookings.replace_topology, topology)
    audit(request, await acting(request), "topology.reload", str(path), None)
    return json_response(reload_ok())
