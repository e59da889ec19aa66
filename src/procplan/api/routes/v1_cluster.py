"""Native cluster routes: nodes, the compact calendar, health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from procplan.api.boundary import query_doc, read_query
from procplan.api.deps import ctx
from procplan.api.models.nodes import CalendarQuery
from procplan.api.policy import PolicedRoute
from procplan.api.responses import conditional_json, error_response, json_response
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import DomainError
from procplan.service.metrics import CONTENT_TYPE
from procplan.wire.calendar import claims_calendar
from procplan.wire.cluster import cluster_status as cluster_status_json
from procplan.wire.cluster import healthy

router = APIRouter(tags=["cluster"], route_class=PolicedRoute)


@router.get("/api/v1/calendar", openapi_extra=query_doc(CalendarQuery))
async def calendar_view(request: Request) -> Response:
    """Per GPU, the claims overlapping ``[start, end)``: one object per booking, not per cell.

    ``node_ids`` is a comma-separated list; absent means every node.
    """
    ask = read_query(request, CalendarQuery)
    window = await run_in_threadpool(
        ctx(request).bookings.calendar, ask.start, ask.end, ask.node_ids
    )
    # polled by the web calendar: ETag / 304
    return conditional_json(request, claims_calendar(window))


@router.get("/health")
async def health(request: Request) -> Response:
    """``{"status": "healthy"}`` when the database answers, else 503."""
    try:
        await run_in_threadpool(ctx(request).bookings.topology)
    except DomainError as exc:
        return error_response(f"unhealthy: {exc.message}", 503)
    return json_response(healthy())


@router.get("/api/v1/cluster/status")
async def cluster_status(request: Request) -> Response:
    """The Go scheduler's totals: GPUs, nodes and jobs (``total_gpus``, ``pending_jobs``...)."""
    context = ctx(request)
    counts = await run_in_threadpool(context.jobs.cluster_status)
    offline = 0
    if context.nodes is not None:  # nodes whose agent stopped reporting are not online
        states, _, _ = await run_in_threadpool(
            context.nodes.planner_view, context.nodes.clock.now()
        )
        offline = sum(1 for state in states.values() if not state.up)
    return json_response(cluster_status_json(counts, offline))


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format: DCGM-named GPU gauges and the scheduler's metrics."""
    registry = ctx(request).metrics
    if registry is None:  # pragma: no cover - always composed
        return error_response("metrics are not enabled", 404)
    body = await run_in_threadpool(registry.render)
    return Response(body, media_type=CONTENT_TYPE)
