"""JSON of usage accounting: ``/api/v1/usage/report``, ``/api/v1/usage/jobs``,
``/api/v1/jobs/{id}/usage`` and ``/api/v1/bookings/{id}/usage`` (issue #14).

GPU time is given in GPU-hours rounded to 3 decimals (about 4 seconds) for people, and in
exact GPU-seconds (``*_s``) for programs that add reports up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from procplan.core.timeutil import HOUR, Instant, to_iso
from procplan.core.usage import By, Efficiency, FinishedJob, Hold, Totals
from procplan.wire.base import Json, iso_or_none

__all__ = [
    "booking_usage_json",
    "daily_json",
    "finished_jobs_json",
    "job_usage_json",
    "report_json",
    "totals_json",
]


def _hours(seconds: int) -> float:
    return round(seconds / HOUR, 3)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def totals_json(totals: Totals) -> Json:
    """One report row's figures."""
    return {
        "booked_gpu_hours": _hours(totals.booked_s),
        "used_gpu_hours": _hours(totals.used_s),
        "idle_gpu_hours": _hours(totals.idle_s),
        "idle_fraction": _round(totals.idle_fraction, 4),
        "job_gpu_hours": _hours(totals.job_s),
        "unbooked_gpu_hours": _hours(totals.unbooked_s),
        "jobs": totals.jobs,
        "mean_wait_s": _round(totals.mean_wait_s, 1),
        "booked_s": totals.booked_s,
        "used_s": totals.used_s,
        "job_s": totals.job_s,
        "unbooked_s": totals.unbooked_s,
        "wait_s": totals.wait_s,
    }


def report_json(
    by: By,
    start: Instant,
    end: Instant,
    until: Instant,
    threshold_pct: float,
    rows: Mapping[str, Totals],
    total: Totals,
) -> Json:
    """``GET /api/v1/usage/report``: one row per key (``by``), sorted, and the total."""
    return {
        "by": by.value,
        "start": to_iso(start),
        "end": to_iso(end),
        "until": to_iso(until),
        "busy_threshold_pct": threshold_pct,
        "rows": [{by.value: key, **totals_json(totals)} for key, totals in rows.items()],
        "total": totals_json(total),
    }


def daily_json(
    by: By,
    threshold_pct: float,
    days: Sequence[tuple[Instant, Instant, Mapping[str, Totals], Totals]],
) -> Json:
    """``GET /api/v1/usage/daily``: the report of each UTC day (the Usage page's charts)."""
    return {
        "by": by.value,
        "busy_threshold_pct": threshold_pct,
        "days": [
            {
                "start": to_iso(start),
                "end": to_iso(end),
                "rows": [{by.value: key, **totals_json(totals)} for key, totals in rows.items()],
                "total": totals_json(total),
            }
            for start, end, rows, total in days
        ],
    }


def booking_usage_json(
    booking_id: int,
    start: Instant,
    end: Instant,
    until: Instant,
    booked_s: int,
    used_s: int,
    threshold_pct: float,
) -> Json:
    """``GET /api/v1/bookings/{id}/usage``: booked, used and idle GPU-hours up to ``until``."""
    totals = Totals(booked_s=booked_s, used_s=used_s)
    return {
        "booking_id": booking_id,
        "start": to_iso(start),
        "end": to_iso(end),
        "until": to_iso(until),
        "booked_gpu_hours": _hours(booked_s),
        "used_gpu_hours": _hours(used_s),
        "idle_gpu_hours": _hours(totals.idle_s),
        "idle_fraction": _round(totals.idle_fraction, 4),
        "booked_s": booked_s,
        "used_s": used_s,
        "busy_threshold_pct": threshold_pct,
    }


def job_usage_json(
    job_id: int, claims: Sequence[Hold], eff: Efficiency, threshold_pct: float
) -> Json:
    """``GET /api/v1/jobs/{id}/usage``: the ``seff`` figures and the claims they cover."""
    return {
        "job_id": str(job_id),
        "gpu_hours": _hours(eff.gpu_s),
        "gpu_s": eff.gpu_s,
        "wall_s": eff.wall_s,
        "utilization_mean_pct": _round(eff.util_mean),
        "utilization_peak_pct": _round(eff.util_peak),
        "memory_mean_mb": _round(eff.mem_mean_mb, 1),
        "memory_peak_mb": _round(eff.mem_peak_mb, 1),
        "samples": eff.samples,
        "busy_threshold_pct": threshold_pct,
        "claims": [
            {"gpu": c.gpu, "node": c.node, "start": to_iso(c.start), "end": to_iso(c.end)}
            for c in claims
        ],
    }


def finished_jobs_json(jobs: Sequence[FinishedJob]) -> Json:
    """``GET /api/v1/usage/jobs``: finished jobs, newest first (``procplan history``)."""
    return {
        "jobs": [
            {
                "id": str(job.id),  # as in the job list (the Go dialect's string ids)
                "name": job.name,
                "user": job.user,
                "tenant_id": job.tenant,
                "kind": job.kind,
                "state": job.state,
                "gpu_count": job.gpu_count,
                "nodes": list(job.nodes),
                "submitted_at": to_iso(job.submitted),
                "started_at": iso_or_none(job.started),
                "ended_at": iso_or_none(job.ended),
                "wait_s": None if job.started is None else max(job.started - job.submitted, 0),
                "wall_s": (
                    None
                    if job.started is None or job.ended is None
                    else max(job.ended - job.started, 0)
                ),
                "exit_code": job.exit_code,
                "gpu_hours": _hours(job.gpu_s),
                "gpu_s": job.gpu_s,
            }
            for job in jobs
        ]
    }
