"""Native job routes (ADR 0005), which also speak the Go scheduler's REST dialect (COMPAT §3).

Submit, list, show, long-poll (``/wait``), heartbeat, release and cancel. Every parameter is
checked by hand rather than by FastAPI's validation so that bad input is a 400 that names the
field (never a 422), and a job id that is not an integer is simply a job that does not exist
(404): ids are strings on the wire, and a client cannot tell ``"abc"`` from a deleted job.
"""

from __future__ import annotations

import time
from dataclasses import replace

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from procplan.api.boundary import body_doc, query_doc, read_body, read_query
from procplan.api.deps import AppContext, ctx, storable_id
from procplan.api.identity import principal
from procplan.api.models.fields import as_int
from procplan.api.models.jobs import (
    JobListQuery,
    JobRelease,
    JobSubmit,
    PriorityQuery,
    WaitQuery,
)
from procplan.api.ownership import acting, audit, job_owner, owner_check, owner_name
from procplan.api.policy import PolicedRoute
from procplan.api.responses import conditional_json, json_response, render_each
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import NotFound
from procplan.core.identity import Principal, may_see_private
from procplan.core.jobs import Job, JobKind, JobRequest
from procplan.core.lifecycle import IllegalTransition
from procplan.core.priority_parts import PriorityParts
from procplan.service.run_as import check_own_pid
from procplan.store.jobs_repo import JobFilter
from procplan.wire.base import Json
from procplan.wire.jobs import (
    heartbeat_json,
    job_cancelled,
    job_json,
    job_status_json,
    job_submitted,
    jobs_page,
)
from procplan.wire.priority import priority_list

router = APIRouter(prefix="/api/v1", tags=["jobs"], route_class=PolicedRoute)

PAGE_CHUNK = 100  # job rows read at a time for a list page


# ---- parameters --------------------------------------------------------------------------


def job_id_of(raw: str) -> int:
    """A path id as the integer it names; anything else names no job (404, not 422)."""
    number = as_int(raw)
    if number is not None and storable_id(number):
        return number
    raise NotFound(f"Job '{raw[:64]}' does not exist", code="unknown_job")


def with_identity(context: AppContext, who: Principal, req: JobRequest) -> JobRequest:
    """The submission bound to its owner's identity (ADR 0009): a batch job's Unix account
    (``extra["run_as"]``) and, for a client PID on this host, the uid that owns it
    (``extra["pid_uid"]``: the only uid the server will ever signal for this job). Runs in a
    worker thread: it reads the process table and the passwd database."""
    extra = dict(req.extra)
    local = req.host is None or req.host == context.jobs.settings.local_host
    if req.pid is not None and local:
        extra["pid_uid"] = check_own_pid(who, req.pid)
    if req.kind is JobKind.BATCH:
        extra["run_as"] = context.run_as.account_for(who)
    return replace(req, extra=extra)


# ---- shared with the srun routes ---------------------------------------------------------


async def render(context: AppContext, job: Job) -> Json:
    """The job object; GPU indices and node names come from the current topology."""
    topology = context.bookings.recent_topology()  # names and indices: 1 s is fresh
    return job_json(job, topology, context.bookings.clock.now())


async def renew_lease(context: AppContext, job: Job) -> Job:
    """Heartbeat an unfinished interactive job: a client that waits is a client alive."""
    if job.kind is not JobKind.INTERACTIVE or job.state.is_finished:
        return job
    try:
        return await run_in_threadpool(context.jobs.heartbeat, job.id)
    except IllegalTransition:  # it finished meanwhile: the wait returns it
        return job


def renew_every_s(context: AppContext) -> float:
    """How often a waiting client's lease is renewed: three chances before it lapses."""
    return max(context.jobs.settings.lease_ttl_s / 3, 0.5)


async def wait_renewing(
    context: AppContext, job_id: int, seen: int | None, timeout_s: float
) -> Job:
    """``JobWaiter.wait`` in slices short enough to keep an interactive job's lease alive."""
    deadline = time.monotonic() + timeout_s
    job = await run_in_threadpool(context.jobs.get, job_id)
    while True:
        job = await renew_lease(context, job)
        remaining = max(deadline - time.monotonic(), 0.0)
        slice_s = min(remaining, renew_every_s(context))
        job = await context.waiter.wait(job_id, seen, slice_s)
        if seen is None or job.version > seen or job.state.is_finished:
            return job
        if slice_s >= remaining or context.waiter.closed:  # closed: the server is stopping
            return job


def _submit(context: AppContext, who: Principal, req: JobRequest) -> tuple[JobRequest, list[Job]]:
    """Bind the identity and submit, in one worker-thread hop."""
    bound = with_identity(context, who, req)
    return bound, context.jobs.submit(bound)


# ---- routes ------------------------------------------------------------------------------


@router.post("/jobs", status_code=201, openapi_extra=body_doc(JobSubmit, required=True))
async def submit_job(request: Request) -> Response:
    """Queue a job (or a job array: one job per index); 201 with the Go scheduler's keys."""
    ask = await read_body(request, JobSubmit)
    context = ctx(request)
    who = await acting(request, ask.user or None)
    req = ask.to_request(owner_name(who), context.jobs.settings.max_array_size)
    req, created = await run_in_threadpool(_submit, context, who, req)
    first = created[0]
    ids = f"job {first.id}" if len(created) == 1 else f"jobs {first.id}..{created[-1].id}"
    audit(request, who, "job.submit", ids, req.user, req.name)
    rendered = await render(context, first)
    return json_response(job_submitted(rendered, created, req.array is not None), 201)


@router.get("/jobs", openapi_extra=query_doc(JobListQuery))
async def list_jobs(request: Request) -> Response:
    """Newest first; filters are ANDed; ``state`` takes a comma list or ``active``."""
    ask = read_query(request, JobListQuery)
    flt = JobFilter(
        user=ask.user,
        tenant=ask.tenant_id or ask.tenant,
        states=ask.state,
        kind=ask.kind,
        node_id=ask.node_id,
        limit=ask.limit,
        offset=ask.offset,
    )
    who = await principal(request)
    rendered, total, cut = await run_in_threadpool(_budgeted_page, ctx(request), flt, who)
    document = jobs_page(rendered, total, cut)  # ``cut``: the page stops early
    return conditional_json(request, document)  # polled by the web pages: ETag / 304


def _budgeted_page(
    context: AppContext, flt: JobFilter, who: Principal
) -> tuple[list[Json], int, bool]:
    """The page's jobs as JSON objects, the total, and whether the page stops short: rows are
    read ``PAGE_CHUNK`` at a time, and the page ends before its JSON would pass the answer
    cap. A job carries up to 64 KiB of command line and 64 KiB of environment, so a page of
    1,000 could weigh 128 MB; it never takes more than the cap and one chunk in memory."""
    topology = context.bookings.recent_topology()  # names and indices: 1 s is fresh
    now = context.bookings.clock.now()
    page: list[Json] = []
    used = total = read = 0
    while read < flt.limit:
        chunk = replace(flt, offset=flt.offset + read, limit=min(PAGE_CHUNK, flt.limit - read))
        if read:  # the total was counted with the first part
            jobs = context.jobs.list_rows(chunk)
        else:
            jobs, total = context.jobs.list(chunk)

        def one(job: Job) -> Json:
            return job_json(job, topology, now, private=may_see_private(who, job.user))

        for item in render_each(jobs, one, "job"):
            used += len(orjson.dumps(item)) + 1
            if used > context.answer_bytes:
                return page, total, True
            page.append(item)
        read += len(jobs)
        if len(jobs) < chunk.limit:
            break
    return page, total, False


@router.get("/queue/priority", openapi_extra=query_doc(PriorityQuery))
async def queue_priority(request: Request) -> Response:
    """Each pending job's effective priority and its weighted parts (class = job priority +
    tenant tier, age, fair-share, size), in queue order, like Slurm's ``sprio``."""
    ask = read_query(request, PriorityQuery)
    context = ctx(request)
    now = context.bookings.clock.now()
    rows = await run_in_threadpool(context.jobs.priority, now)
    tenant = ask.tenant_id or ask.tenant

    def wanted(parts: PriorityParts) -> bool:
        return (ask.user is None or parts.user == ask.user) and (
            tenant is None or parts.tenant == tenant
        )

    ranked = [(place, parts) for place, parts in enumerate(rows, start=1) if wanted(parts)]
    return json_response(priority_list(ranked[: ask.limit], len(ranked), now))


@router.get("/jobs/{raw_id}")
async def get_job(request: Request, raw_id: str) -> Response:
    """The Go ``JobStatus`` keys (``job_id``, ``state``, ``queue_position``, ...) + the job."""
    context = ctx(request)
    job = await run_in_threadpool(context.jobs.get, job_id_of(raw_id))
    topology = context.bookings.recent_topology()  # names and indices: 1 s is fresh
    private = may_see_private(await principal(request), job.user)
    return json_response(
        job_status_json(job, topology, context.bookings.clock.now(), private=private)
    )


@router.get("/jobs/{raw_id}/wait", openapi_extra=query_doc(WaitQuery))
async def wait_job(request: Request, raw_id: str) -> Response:
    """Long-poll: the job once its ``version`` exceeds ``version`` (or at once without one),
    else after ``timeout`` seconds; renews the lease of an interactive job meanwhile."""
    ask = read_query(request, WaitQuery)
    job_id = job_id_of(raw_id)
    await job_owner(request, job_id)
    context = ctx(request)
    job = await wait_renewing(context, job_id, ask.version, ask.timeout)
    return json_response(await render(context, job))


@router.post("/jobs/{raw_id}/heartbeat")
async def heartbeat(request: Request, raw_id: str) -> Response:
    """Renew an interactive job's lease; the answer says whether to go on."""
    job_id = job_id_of(raw_id)
    await job_owner(request, job_id)
    job = await run_in_threadpool(ctx(request).jobs.heartbeat, job_id)
    return json_response(heartbeat_json(job))


@router.post("/jobs/{raw_id}/release", openapi_extra=body_doc(JobRelease))
async def release(request: Request, raw_id: str) -> Response:
    """The client's command ended: ``exit_code`` 0 (or null) completes it, else it failed."""
    ask = await read_body(request, JobRelease)
    job_id = job_id_of(raw_id)
    who = await principal(request)
    context = ctx(request)
    check = owner_check(who, "job")
    job = await run_in_threadpool(context.jobs.release, job_id, ask.exit_code, check)
    audit(request, who, "job.release", f"job {job_id}", job.user, f"exit_code={ask.exit_code}")
    return json_response(await render(context, job))


@router.delete("/jobs/{raw_id}")
async def cancel_job(request: Request, raw_id: str) -> Response:
    """Withdraw a pending job or stop a running one; 409 ``job_finished`` when it is over."""
    context = ctx(request)
    job_id = job_id_of(raw_id)
    who = await principal(request)
    job = await run_in_threadpool(context.jobs.cancel, job_id, owner_check(who, "job"))
    audit(request, who, "job.cancel", f"job {job_id}", job.user)
    return json_response(job_cancelled(await render(context, job)))
