"""Node routes: live state (``/api/v1/nodes``), history, and stored job logs.

``/api/v1/nodes`` keeps the fields it had before agents existed (``id``, ``name``,
``gpu_count``, and per GPU ``id``, ``kind``, ``index``, ``uuid``, ``memory_mb``) and adds the
live ones; see ``service.node_views``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from procplan.api.deps import AppContext, ctx, parse_time
from procplan.api.responses import conditional_json, json_response
from procplan.api.routes.v1_jobs import job_id_of
from procplan.core.errors import InvalidRequest, NotFound
from procplan.core.timeutil import HOUR, MINUTE, to_iso
from procplan.service.history import METRIC_NAMES, check_range, series
from procplan.service.node_views import nodes_document
from procplan.service.nodes import NodeService
from procplan.store.logs_repo import check_stream

router = APIRouter(prefix="/api/v1", tags=["nodes"])

DEFAULT_LOG_LIMIT = 64 * 1024
MAX_LOG_LIMIT = 4 * 1024 * 1024


def _nodes(context: AppContext) -> NodeService:
    if context.nodes is None:  # pragma: no cover - always composed
        raise NotFound("This server keeps no node state")
    return context.nodes


def _int_param(request: Request, key: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(key, "").strip()
    if not raw:
        return default
    if not raw.lstrip("+-").isdigit() or len(raw) > 19:
        raise InvalidRequest(f"'{key}' must be an integer")
    value = int(raw)
    if not lo <= value <= hi:
        raise InvalidRequest(f"'{key}' must be between {lo} and {hi}")
    return value


@router.get("/nodes")
async def nodes(request: Request) -> Response:
    """Every node with live readings, processes, holders and flags."""
    document = await run_in_threadpool(nodes_document, _nodes(ctx(request)))
    return conditional_json(request, document)  # polled by the web pages: ETag / 304


@router.get("/nodes/{node_id}")
async def node(node_id: str, request: Request) -> Response:
    document = await run_in_threadpool(nodes_document, _nodes(ctx(request)), node_id)
    if not document["nodes"]:
        raise NotFound(f"Node '{node_id}' does not exist", code="unknown_node")
    return json_response(document["nodes"][0])


@router.get("/nodes/{node_id}/history")
async def history(node_id: str, request: Request) -> Response:
    """Per GPU of the node, ``metric`` over ``[start, end)`` in steps of ``step`` seconds
    (default: the last 6 hours in 1-minute steps)."""
    service = _nodes(ctx(request))
    params = request.query_params
    now = service.clock.now()
    end = parse_time(params["end"], "end: ") if params.get("end") else now
    start = parse_time(params["start"], "start: ") if params.get("start") else end - 6 * HOUR
    step = _int_param(request, "step", MINUTE, 1, 366 * 24 * HOUR)
    metric = params.get("metric", "utilization")
    agg = params.get("agg", "avg")
    check_range(metric, agg, start, end, step)
    topology_node = service.bookings.topology().node(node_id)
    if topology_node is None:
        raise NotFound(f"Node '{node_id}' does not exist", code="unknown_node")
    resolution = service.history.resolution(start, end, step, now)
    bucket_start = start // resolution * resolution
    rows = await run_in_threadpool(
        service.history.store.query, node_id, resolution, bucket_start, end
    )
    gpus = topology_node.gpus
    points = series(rows, [g.id for g in gpus], metric, agg, start, end, max(step, resolution))
    index = {g.id: g.index for g in gpus}
    return json_response(
        {
            "node": node_id,
            "metric": metric,
            "unit": METRIC_NAMES[metric][1],
            "agg": agg,
            "step": max(step, resolution),
            "start": to_iso(start),
            "end": to_iso(end),
            "series": [
                {"gpu": gpu_id, "index": index[gpu_id], "points": [list(p) for p in pts]}
                for gpu_id, pts in points
            ],
        }
    )


@router.get("/jobs/{job_id}/logs")
async def job_logs(job_id: str, request: Request) -> Response:
    """The job's stored output as raw bytes from ``offset`` (at most ``limit``), with the
    total size, truncation and the job's state in headers (``procplan logs -f`` polls)."""
    context = ctx(request)
    job = await run_in_threadpool(context.jobs.get, job_id_of(job_id))
    stream = check_stream(request.query_params.get("stream", "stdout"))
    offset = _int_param(request, "offset", 0, 0, 2**53)
    limit = _int_param(request, "limit", DEFAULT_LOG_LIMIT, 1, MAX_LOG_LIMIT)
    raw_run = request.query_params.get("run", "").strip()
    run = _int_param(request, "run", 0, 0, 1_000_000) if raw_run else None
    assert context.agent_jobs is not None
    data, size, truncated, _ = await run_in_threadpool(
        context.agent_jobs.logs.read, job.id, stream, offset, limit, run
    )
    headers = {
        "X-Log-Size": str(size),
        "X-Log-Truncated": "true" if truncated else "false",
        "X-Job-State": job.state.value,
    }
    return Response(data, media_type="application/octet-stream", headers=headers)
