"""Agent routes (ADR 0006): register, heartbeat, desired-jobs long poll, job events, logs.

Every route first checks the agent token (401), so that an unauthenticated caller learns
nothing about nodes or jobs. Bodies are read and parsed by hand (``core.node_reports``) so
that a malformed report is a 400 naming the field.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from procplan.api.deps import ctx, json_object
from procplan.api.responses import json_response
from procplan.api.routes.v1_jobs import job_id_of
from procplan.core.errors import InvalidRequest, NotFound
from procplan.service.agent_jobs import AgentJobs
from procplan.service.nodes import NodeService
from procplan.store.logs_repo import LogOffsetMismatch, check_stream

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])

DEFAULT_WAIT_S = 25.0
MAX_LOG_CHUNK = 4 * 1024 * 1024


def _services(request: Request) -> tuple[NodeService, AgentJobs]:
    context = ctx(request)
    if context.nodes is None or context.agent_jobs is None:  # pragma: no cover - composed
        raise NotFound("This server does not accept agents")
    context.nodes.authenticate(request.headers.get("authorization"))
    return context.nodes, context.agent_jobs


def _number(request: Request, key: str, default: float, lo: float, hi: float) -> float:
    raw = request.query_params.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidRequest(f"'{key}' must be a number") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"'{key}' must be between {lo:g} and {hi:g}")
    return value


@router.post("/register")
async def register(request: Request) -> Response:
    nodes, _ = _services(request)
    body = await json_object(request)
    return json_response(await run_in_threadpool(nodes.register, body))


@router.post("/{node_id}/heartbeat")
async def heartbeat(node_id: str, request: Request) -> Response:
    nodes, _ = _services(request)
    body = await json_object(request)
    await run_in_threadpool(nodes.heartbeat, node_id, body)
    return json_response({"ok": True})


@router.get("/{node_id}/jobs")
async def desired_jobs(node_id: str, request: Request) -> Response:
    """The node's desired batch jobs; waits up to ``wait`` s while they equal ``version``."""
    _, agent_jobs = _services(request)
    session = request.query_params.get("session", "")
    version = request.query_params.get("version") or None
    wait = _number(request, "wait", DEFAULT_WAIT_S, 0, 60)
    return json_response(await agent_jobs.poll(node_id, session, version, wait))


@router.post("/{node_id}/events")
async def events(node_id: str, request: Request) -> Response:
    _, agent_jobs = _services(request)
    body = await json_object(request)
    return json_response(await run_in_threadpool(agent_jobs.events, node_id, body))


@router.post("/{node_id}/jobs/{job_id}/logs")
async def ship_log(node_id: str, job_id: str, request: Request) -> Response:
    """Append raw bytes to a job's stored log at ``offset`` (409 ``offset_mismatch`` with the
    stored ``size`` when the agent and the server disagree)."""
    nodes, agent_jobs = _services(request)
    params = request.query_params
    nodes.check_session(node_id, params.get("session", ""))
    stream = check_stream(params.get("stream", "stdout"))
    run = int(_number(request, "run", 0, 0, 1_000_000))
    offset = int(_number(request, "offset", 0, 0, 2**53))
    data = await request.body()
    if len(data) > MAX_LOG_CHUNK:
        raise InvalidRequest(f"log chunks are limited to {MAX_LOG_CHUNK} bytes")
    try:
        result = await run_in_threadpool(
            agent_jobs.ship_log, node_id, job_id_of(job_id), run, stream, offset, data
        )
    except LogOffsetMismatch as exc:
        body = {"error": exc.message, "status": 409, "code": exc.code, "size": exc.size}
        return json_response(body, 409)
    return json_response(result)
