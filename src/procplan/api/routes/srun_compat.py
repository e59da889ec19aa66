"""local-gpu-scheduler's API (COMPAT §2), so its unmodified ``srun`` works against us.

``POST /acquire`` is an ordinary interactive job of the OS user who owns the PID, pinned to this
host's node: priorities, bookings and quotas apply, the PID watcher ends it when the process
exits, and the request blocks (no timeout: ``srun`` sets none) until the job runs. Errors keep
that server's ``{"error": ...}`` shape (no ``code``: these paths are not ``/api/v1``).
"""

from __future__ import annotations

import contextlib
import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from procplan import __version__
from procplan.api.boundary import body_doc, read_body
from procplan.api.deps import AppContext, ctx
from procplan.api.identity import principal
from procplan.api.models.jobs import MAX_GPUS, AcquireBody
from procplan.api.policy import PolicedRoute
from procplan.api.responses import error_response, json_response
from procplan.api.routes.v1_jobs import renew_every_s, renew_lease
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import InvalidRequest
from procplan.core.identity import Principal
from procplan.core.jobs import Job, JobKind, JobRequest, JobState
from procplan.core.lifecycle import IllegalTransition
from procplan.core.model import Node
from procplan.service.leases import SRUN_CLIENT
from procplan.service.run_as import check_own_pid
from procplan.store.jobs_repo import JobFilter
from procplan.wire.srun import acquired, srun_jobs, srun_status

router = APIRouter(tags=["srun-compat"], route_class=PolicedRoute)

POLL_S = 1.0  # how often a blocked /acquire looks for a client that hung up
MAX_JOBS_LISTED = 1000


async def acquire_body(request: Request) -> AcquireBody:
    """The body of ``/acquire``; an empty one says what to send (srun always sends one)."""
    if not (await request.body()).strip():
        raise InvalidRequest('missing JSON body: send {"pid": <int>, "num_gpus": <int>}')
    return await read_body(request, AcquireBody)


def local_node_id(context: AppContext) -> str:
    """This host's node: ``Settings.local_node``, else the host name (as ``local_status``)."""
    settings = context.jobs.settings
    return settings.local_node or settings.local_host


def _local_node(context: AppContext) -> Node | None:
    """``None`` when this host is not a node of the topology (then it has no GPUs to give)."""
    return context.bookings.topology().node(local_node_id(context))


def _acquire_request(context: AppContext, ask: AcquireBody, who: Principal) -> JobRequest:
    """Checked in a worker thread: it reads the topology and the process table. The PID must
    be the caller's own process (the job is theirs, and the server will watch it)."""
    pid, count = ask.pid, ask.num_gpus
    pid_uid = check_own_pid(who, pid)
    node = _local_node(context)
    available = 0 if node is None else len(node.gpus)
    if count > min(available, MAX_GPUS):
        raise InvalidRequest(
            f"requested {count} GPU(s) but only {available} available on this machine"
        )
    return JobRequest(
        user=who.name or "",
        kind=JobKind.INTERACTIVE,
        name=f"srun-{pid}",
        gpu_count=count,
        node_id=None if node is None else node.id,
        pid=pid,
        host=context.jobs.settings.local_host,
        # srun execs: its PID exiting completes the job
        extra={"client": SRUN_CLIENT, "pid_uid": pid_uid},
    )


async def _cancel_quietly(context: AppContext, job_id: int) -> None:
    with contextlib.suppress(IllegalTransition):  # it ended meanwhile
        await run_in_threadpool(context.jobs.cancel, job_id)


async def _until_started(request: Request, context: AppContext, job: Job) -> Job | None:
    """Block until the job leaves ``pending``; ``None`` when the client hung up first or the
    server is stopping (the job is then cancelled: nobody is left to use the GPUs)."""
    version: int | None = None
    renewed = time.monotonic()
    while job.state is JobState.PENDING:
        if await request.is_disconnected():
            await _cancel_quietly(context, job.id)
            return None
        if time.monotonic() - renewed >= renew_every_s(context):
            job, renewed = await renew_lease(context, job), time.monotonic()
        job = await context.waiter.wait(job.id, version, POLL_S)
        version = job.version
        if context.waiter.closed and job.state is JobState.PENDING:
            await _cancel_quietly(context, job.id)  # the server is stopping: nobody waits
            return None
    return job


@router.post("/acquire", openapi_extra=body_doc(AcquireBody, required=True))
async def acquire(request: Request) -> Response:
    """Block until GPUs are allocated, then ``{"job_id", "gpus": "0,1"}`` (PCI indices)."""
    ask = await acquire_body(request)
    context = ctx(request)
    who = await principal(request)
    req = await run_in_threadpool(_acquire_request, context, ask, who)
    created = await run_in_threadpool(context.jobs.submit, req)
    job = await _until_started(request, context, created[0])
    if job is None and context.waiter.closed:
        return error_response("the server is stopping; try again when it is back", 503)
    if job is None:
        return error_response("client disconnected before GPUs were allocated", 499)
    if job.state is not JobState.RUNNING:
        return error_response(f"job {job.id} was {job.state.value} before it got GPUs", 409)
    topology = await run_in_threadpool(context.bookings.topology)
    return json_response(acquired(job, topology))


@router.get("/status")
async def status(request: Request) -> Response:
    """Server identity, uptime and this host's GPU and queue counts."""
    context = ctx(request)
    local = await run_in_threadpool(context.jobs.local_status)
    uptime_s = max(int(time.time() - context.started_at), 0)
    return json_response(srun_status(__version__, uptime_s, context.port, local))


@router.get("/jobs")
async def jobs(request: Request) -> Response:
    """This host's jobs, newest first (the last 1000), in local-gpu-scheduler's shape."""
    context = ctx(request)
    flt = JobFilter(node_id=local_node_id(context), limit=MAX_JOBS_LISTED)
    listed, _total = await run_in_threadpool(context.jobs.list, flt)
    topology = await run_in_threadpool(context.bookings.topology)
    return json_response(srun_jobs(listed, topology))
