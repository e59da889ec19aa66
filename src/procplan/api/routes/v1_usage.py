"""Usage accounting routes (issue #14): ``sreport``, ``sacct`` and ``seff`` for GPUs, and a
booking's booked/used/idle GPU-hours.

Policies (``api.policy``): the report is for every **signed-in** user, like Slurm's
``sreport``: a shared cluster's users see each other's aggregate booked/used/idle GPU time,
which is what makes idle bookings visible; anonymous callers get nothing. The finished-job list,
a job's efficiency and a booking's use are **public** like the job list, the job, the booking
and node history, whose information they summarize (no command line, environment or output).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from procplan.api.boundary import query_doc, read_query
from procplan.api.deps import AppContext, ctx
from procplan.api.models.usage import DailyQuery, FinishedQuery, ReportQuery
from procplan.api.policy import PolicedRoute
from procplan.api.responses import json_response
from procplan.api.routes.v1_bookings import BookingId, known
from procplan.api.routes.v1_jobs import job_id_of
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import NotFound
from procplan.core.timeutil import DAY, Instant
from procplan.service.usage import UsageService
from procplan.wire.usage import (
    booking_usage_json,
    daily_json,
    finished_jobs_json,
    job_usage_json,
    report_json,
)

router = APIRouter(prefix="/api/v1", tags=["usage"], route_class=PolicedRoute)

DEFAULT_DAYS = 7


def _usage(context: AppContext) -> UsageService:
    if context.usage is None:  # pragma: no cover - always composed
        raise NotFound("This server keeps no usage accounting")
    return context.usage


def _window(service: UsageService, start: Instant | None, end: Instant | None) -> tuple[int, int]:
    end = service.clock.now() if end is None else end
    return (end - DEFAULT_DAYS * DAY if start is None else start), end


@router.get("/usage/report", openapi_extra=query_doc(ReportQuery))
async def usage_report(request: Request) -> Response:
    """Per ``by`` (user, tenant or node) over ``[start, end)``: GPU-hours booked, used, idle
    while booked, run by jobs and used without booking, jobs started and their mean queue
    wait. Time after now is not counted (``until``)."""
    ask = read_query(request, ReportQuery)
    service = _usage(ctx(request))
    start, end = _window(service, ask.start, ask.end)
    report = await run_in_threadpool(service.report, ask.by, start, end)
    return json_response(
        report_json(
            report.by,
            report.start,
            report.end,
            report.until,
            report.threshold_pct,
            report.rows,
            report.total,
        )
    )


@router.get("/usage/daily", openapi_extra=query_doc(DailyQuery))
async def usage_daily(request: Request) -> Response:
    """The report of each UTC day (or each calendar day of ``tz``, e.g. the web page's time
    zone) of ``[start, end)`` (at most 92 days; default the last 7), for charts: the days add
    up to the report of the whole window."""
    ask = read_query(request, DailyQuery)
    service = _usage(ctx(request))
    start, end = _window(service, ask.start, ask.end)
    reports = await run_in_threadpool(service.daily, ask.by, start, end, ask.tz)
    days = [(r.start, r.end, r.rows, r.total) for r in reports]
    return json_response(daily_json(reports[0].by, service.busy_pct, days))


@router.get("/usage/jobs", openapi_extra=query_doc(FinishedQuery))
async def finished_jobs(request: Request) -> Response:
    """Jobs that finished in ``[start, end)``, newest first, with wait, wall and GPU time."""
    ask = read_query(request, FinishedQuery)
    service = _usage(ctx(request))
    start, end = _window(service, ask.start, ask.end)
    jobs = await run_in_threadpool(
        lambda: service.history(start, end, user=ask.user, states=ask.state, limit=ask.limit)
    )
    return json_response(finished_jobs_json(jobs))


@router.get("/jobs/{raw_id}/usage")
async def job_usage(raw_id: str, request: Request) -> Response:
    """The job's ``seff`` figures: GPU and wall time, mean and peak utilization and memory
    over the history of the GPUs it held, while it held them."""
    context = ctx(request)
    job = await run_in_threadpool(context.jobs.get, job_id_of(raw_id))  # 404 when unknown
    found = await run_in_threadpool(_usage(context).job_usage, job.id)
    return json_response(
        job_usage_json(found.job_id, found.claims, found.efficiency, found.threshold_pct)
    )


@router.get("/bookings/{booking_id}/usage")
async def booking_usage(booking_id: BookingId, request: Request) -> Response:
    """GPU-hours the booking holds (up to now), how many were used (a job of its owner held
    the GPU, or the GPU was busy) and its idle fraction."""
    service = _usage(ctx(request))
    found = await run_in_threadpool(service.booking_usage, known(booking_id))
    return json_response(
        booking_usage_json(
            found.booking_id,
            found.start,
            found.end,
            found.until,
            found.booked_s,
            found.used_s,
            found.threshold_pct,
        )
    )
