"""ProcPlan-compatible routes (COMPAT.md section 1): same paths, shapes and messages.

Differences are the listed fixes: 400 instead of 409 or 500, strict integers, unknown node
ids rejected in bulk, validation of the config before an atomic swap on reload.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from procplan.api.deps import (
    ctx,
    json_object,
    known_booking_id,
    parse_time,
    request_user,
    strict_int,
)
from procplan.api.responses import json_response
from procplan.core import calendar
from procplan.core.errors import DomainError, InvalidRequest
from procplan.core.model import BookingRequest, Priority
from procplan.core.timeutil import Instant, to_iso
from procplan.service.topology_file import read_topology_file

router = APIRouter(tags=["procplan-compat"])


def _as_compat(exc: DomainError) -> DomainError:
    """ProcPlan's clients know 400 for every refusal of a write (no 409)."""
    if exc.status == 409:
        return InvalidRequest(exc.message, exc.code)
    return exc


def _window(request: Request, start_raw: Any, end_raw: Any) -> tuple[Instant, Instant]:
    if start_raw and end_raw:
        return parse_time(start_raw), parse_time(end_raw)
    return ctx(request).bookings.default_window()


@router.get("/api/nodes")
async def list_nodes(request: Request) -> Response:
    topology = await run_in_threadpool(ctx(request).bookings.topology)
    return json_response({"nodes": [calendar.node_payload(node) for node in topology.nodes]})


@router.get("/api/availability")
async def availability(request: Request) -> Response:
    params = request.query_params
    node_id = params.get("node_id")
    if not node_id:
        raise InvalidRequest("Query parameter 'node_id' is required")
    start, end = _window(request, params.get("start"), params.get("end"))
    granularity = params.get("granularity") or "hour"
    payload = await run_in_threadpool(
        ctx(request).bookings.availability, node_id, start, end, granularity
    )
    return json_response(payload)


@router.post("/api/availability_bulk")
async def availability_bulk(request: Request) -> Response:
    body = await json_object(request)
    node_ids = body.get("node_ids")
    if node_ids is not None:
        if not isinstance(node_ids, list) or not all(
            isinstance(item, str | int) and not isinstance(item, bool) for item in node_ids
        ):
            raise InvalidRequest("'node_ids' must be an array of ids when provided")
        node_ids = [str(item) for item in node_ids]
    start, end = _window(request, body.get("start"), body.get("end"))
    granularity = str(body.get("granularity") or "hour")
    service = ctx(request).bookings
    if node_ids is None:
        node_ids = [node.id for node in (await run_in_threadpool(service.topology)).nodes]
    payloads = await run_in_threadpool(service.availability_many, node_ids, start, end, granularity)
    return json_response({"availability": payloads})


def _gpu_selection(body: dict[str, Any]) -> tuple[tuple[str, ...] | None, int | None]:
    gpu_ids = body.get("gpu_ids")
    if gpu_ids is not None:
        if not isinstance(gpu_ids, list):
            raise InvalidRequest("'gpu_ids' must be an array when provided")
        if not all(isinstance(g, str | int) and not isinstance(g, bool) for g in gpu_ids):
            raise InvalidRequest("'gpu_ids' must be an array of GPU ids")
    gpu_count = body.get("gpu_count")
    if gpu_count is not None:
        gpu_count = strict_int(gpu_count, "'gpu_count' must be an integer")
    return (tuple(str(g) for g in gpu_ids) if gpu_ids else None), gpu_count


def _booking_request(request: Request, body: dict[str, Any]) -> BookingRequest:
    node_id = str(body.get("node_id") or "")
    start_raw, end_raw = body.get("start"), body.get("end")
    if not node_id or not start_raw or not end_raw:
        raise InvalidRequest("Fields 'node_id', 'start', and 'end' are required")
    start = parse_time(start_raw, "Invalid timestamp: ")
    end = parse_time(end_raw, "Invalid timestamp: ")
    label = str(body.get("user_label") or "").strip()
    gpu_ids, gpu_count = _gpu_selection(body)
    raw_priority = body.get("priority")
    try:
        priority = Priority.MEDIUM if raw_priority is None else Priority.parse(raw_priority)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    return BookingRequest(
        node_id=node_id,
        start=start,
        end=end,
        user=request_user(request, label) or label,
        label=label,
        priority=priority,
        gpu_ids=gpu_ids,
        gpu_count=gpu_count,
    )


@router.post("/api/book")
async def book(request: Request) -> Response:
    body = await json_object(request)
    req = _booking_request(request, body)
    try:
        booking = await run_in_threadpool(ctx(request).bookings.create, req, whole_hours=True)
    except DomainError as exc:
        raise _as_compat(exc) from exc
    return json_response(
        {
            "booking_id": booking.id,
            "node_id": booking.node_id,
            "gpu_ids": list(booking.gpu_ids),
            "start": to_iso(booking.start),
            "end": to_iso(booking.end),
            "user_label": booking.label,
            "priority": booking.priority.label,
        },
        status=201,
    )


@router.post("/api/mark_done")
async def mark_done(request: Request) -> Response:
    body = await json_object(request)
    raw = body.get("booking_id")
    if raw is None:
        raise InvalidRequest("'booking_id' is required")
    booking_id = known_booking_id(strict_int(raw, "'booking_id' must be an integer"))
    await run_in_threadpool(ctx(request).bookings.release, booking_id, whole_hours=True)
    return json_response({"booking_id": booking_id, "status": "completed"})


@router.delete("/api/bookings")
@router.delete("/api/bookings/")
async def delete_without_id() -> Response:
    raise InvalidRequest("Booking id is required")


@router.delete("/api/bookings/{raw_id}")
async def delete_booking(request: Request, raw_id: str) -> Response:
    booking_id = known_booking_id(strict_int(raw_id, "Booking id must be an integer"))
    await run_in_threadpool(ctx(request).bookings.cancel, booking_id)
    return json_response({"booking_id": booking_id, "status": "cancelled"})


@router.post("/api/reload_config")
async def reload_config(request: Request) -> Response:
    context = ctx(request)
    path = context.config_path
    if path is None:
        raise InvalidRequest("Server was started without --config: there is no file to reload")
    topology = await run_in_threadpool(read_topology_file, path)
    await run_in_threadpool(context.bookings.replace_topology, topology)
    return json_response({"status": "ok"})
