"""Agent routes (ADR 0006): register, heartbeat, desired-jobs long poll, job events, logs.

Every route first checks the agent token (401), so that an unauthenticated caller learns
nothing about nodes or jobs; only then is the body read, into the typed models of
``api.models.agents`` (a malformed report is a 400 naming the field).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from procplan.api.boundary import body_doc, query_doc, read_body, read_query
from procplan.api.deps import ctx
from procplan.api.models.agents import (
    EventsBody,
    HeartbeatBody,
    LogChunkQuery,
    PollQuery,
    RegistrationBody,
)
from procplan.api.models.fields import MAX_NAME
from procplan.api.policy import PolicedRoute
from procplan.api.responses import json_response
from procplan.api.routes.v1_jobs import job_id_of
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import NotFound
from procplan.service.agent_jobs import AgentJobs
from procplan.service.nodes import NodeService
from procplan.store.logs_repo import LogOffsetMismatch, check_stream
from procplan.wire.agents import (
    desired_json,
    events_json,
    heartbeat_ok,
    log_shipped,
    offset_mismatch,
    registered_json,
)

router = APIRouter(prefix="/api/v1/agents", tags=["agents"], route_class=PolicedRoute)

NodeId = Annotated[str, Path(max_length=MAX_NAME)]


def _services(request: Request) -> tuple[NodeService, AgentJobs]:
    context = ctx(request)
    if context.nodes is None or context.agent_jobs is None:  # pragma: no cover - composed
        raise NotFound("This server does not accept agents")
    context.nodes.authenticate(request.headers.get("authorization"))
    return context.nodes, context.agent_jobs


@router.post("/register", openapi_extra=body_doc(RegistrationBody, required=True))
async def register(request: Request) -> Response:
    nodes, _ = _services(request)
    ask = await read_body(request, RegistrationBody)
    registered = await run_in_threadpool(nodes.register, ask.registration())
    return json_response(registered_json(registered))


@router.post("/{node_id}/heartbeat", openapi_extra=body_doc(HeartbeatBody, required=True))
async def heartbeat(node_id: NodeId, request: Request) -> Response:
    nodes, _ = _services(request)
    ask = await read_body(request, HeartbeatBody)
    await run_in_threadpool(nodes.heartbeat, node_id, ask.report())
    return json_response(heartbeat_ok())


@router.get("/{node_id}/jobs", openapi_extra=query_doc(PollQuery))
async def desired_jobs(node_id: NodeId, request: Request) -> Response:
    """The node's desired batch jobs; waits up to ``wait`` s while they equal ``version``."""
    _, agent_jobs = _services(request)
    ask = read_query(request, PollQuery)
    desired = await agent_jobs.poll(node_id, ask.session, ask.version, ask.wait)
    return json_response(desired_json(desired))


@router.post("/{node_id}/events", openapi_extra=body_doc(EventsBody, required=True))
async def events(node_id: NodeId, request: Request) -> Response:
    _, agent_jobs = _services(request)
    ask = await read_body(request, EventsBody)
    happened = [event.event() for event in ask.events]
    outcomes = await run_in_threadpool(agent_jobs.events, node_id, ask.session, happened)
    return json_response(events_json(outcomes))


@router.post(
    "/{node_id}/jobs/{job_id}/logs",
    openapi_extra={
        **query_doc(LogChunkQuery),
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def ship_log(node_id: NodeId, job_id: str, request: Request) -> Response:
    """Append raw bytes to a job's stored log at ``offset`` (409 ``offset_mismatch`` with the
    stored ``size`` when the agent and the server disagree). The body's size is bounded by
    the log-chunk limit (``api.guard``)."""
    nodes, agent_jobs = _services(request)
    ask = read_query(request, LogChunkQuery)
    nodes.check_session(node_id, ask.session)
    stream = check_stream(ask.stream)
    data = await request.body()
    try:
        shipped = await run_in_threadpool(
            agent_jobs.ship_log,
            node_id,
            job_id_of(job_id),
            ask.run,
            stream,
            ask.offset,
            data,
            ask.rank,
        )
    except LogOffsetMismatch as exc:
        return json_response(offset_mismatch(exc.message, exc.code, exc.size), 409)
    return json_response(log_shipped(shipped))
