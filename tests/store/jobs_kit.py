"""Builders shared by the job store tests (imported like ``race_workers``)."""

from __future__ import annotations

from procplan.core.jobs import OPEN_END, Job, Plan, Policy, Start
from procplan.core.model import BookingRequest
from procplan.service.bookings import BookingService
from procplan.store.jobs_repo import JobStore

NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC
HOUR = 3600
POLICY = Policy()


def job(user: str = "ada", **fields: object) -> Job:
    return Job(id=0, user=user, **fields)  # type: ignore[arg-type]


def start(j: Job, *gpu_ids: str, end: int = OPEN_END, node: str = "node-a") -> Start:
    return Start(j.id, (node,), gpu_ids, end)


def book(bookings: BookingService, user: str, gpu: str, start_s: int, end_s: int) -> int:
    req = BookingRequest("node-a", start_s, end_s, user, user[:2].upper(), gpu_ids=(gpu,))
    return bookings.create(req, whole_hours=False).id


def run(js: JobStore, j: Job, *gpus: str, end: int = OPEN_END, now: int = NOW) -> Job:
    result = js.apply(Plan(starts=(start(j, *gpus, end=end),)), now, 30)
    assert [s.id for s in result.started] == [j.id], result
    return result.started[0]
