"""Native job routes (ADR 0005), which also speak the Go scheduler's REST dialect (COMPAT §3).

Submit, list, show, long-poll (``/wait``), heartbeat, release and cancel. Every parameter is
checked by hand rather than by FastAPI's validation so that bad input is a 400 that names the
field (never a 422), and a job id that is not an integer is simply a job that does not exist
(404): ids are strings on the wire, and a client cannot tell ``"abc"`` from a deleted job.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from procplan.api.deps import SQL_INT_MAX, AppContext, ctx, json_object, request_user
from procplan.api.job_json import heartbeat_json, job_json, job_status_json
from procplan.api.job_requests import MAX_NAME, int_field, job_request, text_field
from procplan.api.responses import conditional_json, json_response
from procplan.core.errors import InvalidRequest, NotFound
from procplan.core.jobs import Job, JobKind, JobState
from procplan.core.lifecycle import IllegalTransition
from procplan.store.jobs_repo import JobFilter

router = APIRouter(prefix="/api/v1", tags=["jobs"])

ANONYMOUS = "anonymous"
MAX_WAIT_S = 60.0
DEFAULT_WAIT_S = 25.0
MAX_LIST = 1000
_INT_TEXT = re.compile(r"^\s*[+-]?\d{1,30}\s*$")
_STATES = {state.value: state for state in JobState}
_ACTIVE = frozenset({JobState.PENDING, JobState.RUNNING})


# ---- parameters --------------------------------------------------------------------------


def job_id_of(raw: str) -> int:
    """A path id as the integer it names; anything else names no job (404, not 422)."""
    if _INT_TEXT.match(raw) and -SQL_INT_MAX - 1 <= int(raw) <= SQL_INT_MAX:
        return int(raw)
    raise NotFound(f"Job '{raw}' does not exist", code="unknown_job")


def _query(params: Mapping[str, str], key: str) -> str | None:
    """A query parameter; empty means absent (clients send ``?limit=`` for "not given")."""
    value = params.get(key, "").strip()
    return value or None


def _query_int(params: Mapping[str, str], key: str, default: int, lo: int, hi: int) -> int:
    value = int_field({key: _query(params, key)}, key, lo, hi)
    return default if value is None else value


def _states(raw: str | None) -> frozenset[JobState] | None:
    """``state=pending,running`` or ``state=active``; ``None`` when not filtered."""
    if raw is None:
        return None
    wanted: set[JobState] = set()
    for part in raw.lower().split(","):
        name = part.strip()
        if name == "active":
            wanted |= _ACTIVE
        elif name in _STATES:
            wanted.add(_STATES[name])
        elif name:
            names = ", ".join(_STATES)
            raise InvalidRequest(f"state must be a comma list of {names} or 'active'")
    return frozenset(wanted) or None


def _kind(raw: str | None) -> JobKind | None:
    if raw is None:
        return None
    kinds = {kind.value: kind for kind in JobKind}
    if raw.lower() not in kinds:
        raise InvalidRequest("kind must be 'batch' or 'interactive'")
    return kinds[raw.lower()]


def _timeout(raw: str | None) -> float:
    """Seconds to wait, clamped to ``[0, 60]``; not a number is a 400."""
    if raw is None:
        return DEFAULT_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise InvalidRequest("timeout must be a number of seconds (0 to 60)")
    return min(max(value, 0.0), MAX_WAIT_S)


def acting_user(request: Request, body: Mapping[str, Any]) -> str:
    """The ``X-ProcPlan-User`` header, else the body's ``user``, else ``anonymous``."""
    user = request_user(request, text_field(body, "user", max_len=MAX_NAME)) or ANONYMOUS
    if len(user) > MAX_NAME:
        raise InvalidRequest(f"user must be at most {MAX_NAME} characters")
    return user


# ---- shared with the srun routes ---------------------------------------------------------


async def render(context: AppContext, job: Job) -> dict[str, Any]:
    """The job object; GPU indices and node names come from the current topology."""
    topology = context.bookings.topology_cache.recent()  # names and indices: 1 s is fresh
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
        if slice_s >= remaining:
            return job


# ---- routes ------------------------------------------------------------------------------


@router.post("/jobs", status_code=201)
async def submit_job(request: Request) -> Response:
    """Queue a job (or a job array: one job per index); 201 with the Go scheduler's keys."""
    body = await json_object(request)
    context = ctx(request)
    req = job_request(body, acting_user(request, body), context.jobs.settings.max_array_size)
    created = await run_in_threadpool(context.jobs.submit, req)
    first = created[0]
    payload: dict[str, Any] = {
        "job_id": str(first.id),
        "status": "submitted",
        "message": "Job submitted successfully",
        "job": await render(context, first),
    }
    if req.array is not None:
        payload["job_ids"] = [str(job.id) for job in created]
        payload["array_id"] = None if first.array_id is None else str(first.array_id)
    return json_response(payload, 201)


@router.get("/jobs")
async def list_jobs(request: Request) -> Response:
    """Newest first; filters are ANDed; ``state`` takes a comma list or ``active``."""
    params = request.query_params
    flt = JobFilter(
        user=_query(params, "user"),
        tenant=_query(params, "tenant_id") or _query(params, "tenant"),
        states=_states(_query(params, "state")),
        kind=_kind(_query(params, "kind")),
        node_id=_query(params, "node_id"),
        limit=_query_int(params, "limit", 50, 1, MAX_LIST),
        offset=_query_int(params, "offset", 0, 0, SQL_INT_MAX),
    )
    context = ctx(request)
    jobs, total = await run_in_threadpool(context.jobs.list, flt)
    topology = context.bookings.topology_cache.recent()  # names and indices: 1 s is fresh
    now = context.bookings.clock.now()
    document = {"jobs": [job_json(j, topology, now) for j in jobs], "total": total}
    return conditional_json(request, document)  # polled by the web pages: ETag / 304


@router.get("/jobs/{raw_id}")
async def get_job(request: Request, raw_id: str) -> Response:
    """The Go ``JobStatus`` keys (``job_id``, ``state``, ``queue_position``, ...) + the job."""
    context = ctx(request)
    job = await run_in_threadpool(context.jobs.get, job_id_of(raw_id))
    topology = context.bookings.topology_cache.recent()  # names and indices: 1 s is fresh
    return json_response(job_status_json(job, topology, context.bookings.clock.now()))


@router.get("/jobs/{raw_id}/wait")
async def wait_job(request: Request, raw_id: str) -> Response:
    """Long-poll: the job once its ``version`` exceeds ``version`` (or at once without one),
    else after ``timeout`` seconds; renews the lease of an interactive job meanwhile."""
    job_id = job_id_of(raw_id)
    params = request.query_params
    timeout_s = _timeout(_query(params, "timeout"))
    seen = int_field({"version": _query(params, "version")}, "version", 0, SQL_INT_MAX)
    context = ctx(request)
    job = await wait_renewing(context, job_id, seen, timeout_s)
    return json_response(await render(context, job))


@router.post("/jobs/{raw_id}/heartbeat")
async def heartbeat(request: Request, raw_id: str) -> Response:
    """Renew an interactive job's lease; the answer says whether to go on."""
    job = await run_in_threadpool(ctx(request).jobs.heartbeat, job_id_of(raw_id))
    return json_response(heartbeat_json(job))


@router.post("/jobs/{raw_id}/release")
async def release(request: Request, raw_id: str) -> Response:
    """The client's command ended: ``exit_code`` 0 (or null) completes it, else it failed."""
    job_id = job_id_of(raw_id)
    body = await json_object(request)
    unknown = sorted(set(body) - {"exit_code"})
    if unknown:
        raise InvalidRequest(f"unknown field '{unknown[0]}'")
    exit_code = int_field(body, "exit_code", -(2**31), 2**31 - 1)
    context = ctx(request)
    job = await run_in_threadpool(context.jobs.release, job_id, exit_code)
    return json_response(await render(context, job))


@router.delete("/jobs/{raw_id}")
async def cancel_job(request: Request, raw_id: str) -> Response:
    """Withdraw a pending job or stop a running one; 409 ``job_finished`` when it is over."""
    context = ctx(request)
    job = await run_in_threadpool(context.jobs.cancel, job_id_of(raw_id))
    return json_response(
        {"message": "Job cancelled successfully", "job": await render(context, job)}
    )
