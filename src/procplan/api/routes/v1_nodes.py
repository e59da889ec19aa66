"""Node routes: live state (``/api/v1/nodes``), history, maintenance, and stored job logs.

The cluster view is gathered by ``service.node_views`` and rendered by ``wire.nodes``. Drain,
resume and remove (ADR 0020) are the admins' (``api.policy``) and audited.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from procplan.api.boundary import body_doc, query_doc, read_body, read_query
from procplan.api.deps import AppContext, ctx
from procplan.api.identity import principal
from procplan.api.models.fields import MAX_NAME
from procplan.api.models.nodes import HistoryQuery, LogQuery, NodeDrain
from procplan.api.ownership import audit
from procplan.api.policy import PolicedRoute
from procplan.api.responses import conditional_json, json_response
from procplan.api.routes.v1_jobs import job_id_of
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import Forbidden, NotFound, check_answer_size
from procplan.core.identity import may_see_private
from procplan.core.timeutil import HOUR, MIN_INSTANT
from procplan.service.history import METRIC_NAMES, check_range, series
from procplan.service.node_views import cluster_view
from procplan.service.nodes import NodeService
from procplan.store.logs_repo import check_stream
from procplan.wire.nodes import cluster_json, history_json, maintenance_json, node_json

router = APIRouter(prefix="/api/v1", tags=["nodes"], route_class=PolicedRoute)

NodeId = Annotated[str, Path(max_length=MAX_NAME)]
POINT_BYTES = 32  # ``[1795428000,12.34],`` with room to spare


def _nodes(context: AppContext) -> NodeService:
    if context.nodes is None:  # pragma: no cover - always composed
        raise NotFound("This server keeps no node state")
    return context.nodes


@router.get("/nodes")
async def nodes(request: Request) -> Response:
    """Every node with live readings, processes, holders and flags."""
    view = await run_in_threadpool(cluster_view, _nodes(ctx(request)))
    return conditional_json(request, cluster_json(view))  # polled by the web pages: ETag / 304


@router.get("/nodes/{node_id}")
async def node(node_id: NodeId, request: Request) -> Response:
    view = await run_in_threadpool(cluster_view, _nodes(ctx(request)), node_id)
    if not view.nodes:
        raise NotFound(f"Node '{node_id}' does not exist", code="unknown_node")
    return json_response(node_json(view.nodes[0], view.now))


@router.get("/nodes/{node_id}/history", openapi_extra=query_doc(HistoryQuery))
async def history(node_id: NodeId, request: Request) -> Response:
    """Per GPU of the node, ``metric`` over ``[start, end)`` in steps of ``step`` seconds
    (default: the last 6 hours in 1-minute steps)."""
    ask = read_query(request, HistoryQuery)
    context = ctx(request)
    service = _nodes(context)
    now = service.clock.now()
    end = now if ask.end is None else ask.end
    start = max(end - 6 * HOUR, MIN_INSTANT) if ask.start is None else ask.start
    step, metric, agg = ask.step, ask.metric, ask.agg
    check_range(metric, agg, start, end, step)
    topology_node = service.topology().node(node_id)
    if topology_node is None:
        raise NotFound(f"Node '{node_id}' does not exist", code="unknown_node")
    check_answer_size(
        len(topology_node.gpus) * ((end - start) // step + 1) * POINT_BYTES,
        context.answer_bytes,
        "use a larger step or a shorter range",
    )
    resolution = service.history.resolution(start, end, step, now)
    bucket_start = start // resolution * resolution
    rows = await run_in_threadpool(service.history.query, node_id, resolution, bucket_start, end)
    gpus = topology_node.gpus
    points = series(rows, [g.id for g in gpus], metric, agg, start, end, max(step, resolution))
    index = {g.id: g.index for g in gpus}
    unit, step = METRIC_NAMES[metric][1], max(step, resolution)
    return json_response(history_json(node_id, metric, unit, agg, step, start, end, points, index))


@router.post("/nodes/{node_id}/drain", openapi_extra=body_doc(NodeDrain))
async def drain_node(node_id: NodeId, request: Request) -> Response:
    """No new job or booking starts on the node; running jobs finish, bookings stay and
    their owners are told. Draining again replaces the reason."""
    ask = await read_body(request, NodeDrain)
    who = await principal(request)
    maintenance = _nodes(ctx(request)).maintenance
    record = await run_in_threadpool(maintenance.drain, node_id, ask.reason or None, who.name)
    audit(request, who, "node.drain", f"node {node_id}", None, ask.reason or "")
    return json_response(maintenance_json(record))


@router.post("/nodes/{node_id}/resume")
async def resume_node(node_id: NodeId, request: Request) -> Response:
    """Undo a drain (and a removal): the node takes new jobs and bookings again."""
    who = await principal(request)
    record = await run_in_threadpool(_nodes(ctx(request)).maintenance.resume, node_id)
    audit(request, who, "node.resume", f"node {node_id}", None)
    return json_response(maintenance_json(record))


@router.post("/nodes/{node_id}/remove")
async def remove_node(node_id: NodeId, request: Request) -> Response:
    """Retire the node (its history stays; ``resume`` brings it back); refused with
    ``node_in_use`` while a job runs there or a booking has not ended."""
    who = await principal(request)
    record = await run_in_threadpool(_nodes(ctx(request)).remove, node_id)
    audit(request, who, "node.remove", f"node {node_id}", None)
    return json_response(maintenance_json(record))


@router.get("/jobs/{job_id}/logs", openapi_extra=query_doc(LogQuery))
async def job_logs(job_id: str, request: Request) -> Response:
    """The job's stored output as raw bytes from ``offset`` (at most ``limit``), with the
    total size, truncation and the job's state in headers (``procplan logs -f`` polls).
    Without ``run``, every run of a requeued job in order; ``rank``: a multi-node job's
    node (default 0)."""
    ask = read_query(request, LogQuery)
    context = ctx(request)
    job = await run_in_threadpool(context.jobs.get, job_id_of(job_id))
    if not may_see_private(await principal(request), job.user):
        raise Forbidden(
            f"the output of job {job.id} is for its owner '{job.user}' and admins only",
            code="not_owner",
        )
    stream = check_stream(ask.stream)
    assert context.agent_jobs is not None
    data, size, truncated, _ = await run_in_threadpool(
        context.agent_jobs.read_log, job.id, stream, ask.offset, ask.limit, ask.run, ask.rank
    )
    headers = {
        "X-Log-Size": str(size),
        "X-Log-Truncated": "true" if truncated else "false",
        "X-Job-State": job.state.value,
    }
    return Response(data, media_type="application/octet-stream", headers=headers)
