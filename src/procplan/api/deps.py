"""What routes need, hung on ``app.state.ctx`` by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from procplan.api.guard import BodyLimits
from procplan.api.models.fields import INT32_MAX, INT32_MIN
from procplan.core.errors import NotFound
from procplan.service.accounts import AccountService
from procplan.service.agent_jobs import AgentJobs
from procplan.service.audit import AuditLog
from procplan.service.bookings import BookingService
from procplan.service.idle_reclaim import IdleReclaim
from procplan.service.jobs import JobService
from procplan.service.metrics import SchedulerMetrics
from procplan.service.nodes import NodeService
from procplan.service.notify import NotifyService
from procplan.service.run_as import RunAsPolicy
from procplan.service.usage import UsageService
from procplan.service.waiting import JobWaiter


@dataclass(slots=True)
class AppContext:
    """The composed service objects plus the topology file ``reload_config`` re-reads.

    ``started_at`` (``time.time()`` at start) and ``port`` are what local-gpu-scheduler's
    ``/status`` reports (its tooling shows uptime and probes the port).
    """

    bookings: BookingService
    config_path: Path | None
    jobs: JobService
    waiter: JobWaiter
    started_at: float
    port: int
    accounts: AccountService
    audit: AuditLog
    nodes: NodeService | None = None
    agent_jobs: AgentJobs | None = None
    metrics: SchedulerMetrics | None = None
    notify: NotifyService | None = None
    idle: IdleReclaim | None = None
    usage: UsageService | None = None
    run_as: RunAsPolicy = field(default_factory=RunAsPolicy)
    body_limits: BodyLimits = field(default_factory=BodyLimits)
    answer_bytes: int = 24 << 20  # the largest answer one request may get (lists are cut)


def ctx(request: Request) -> AppContext:
    context: AppContext = request.app.state.ctx
    return context


def storable_id(number: int) -> bool:
    """True when ``number`` could be the id of a stored booking or job: ids live in INTEGER
    columns, 32-bit on PostgreSQL, so a larger one cannot exist on either store (and
    PostgreSQL refuses even to compare one with the column: a 500)."""
    return INT32_MIN <= number <= INT32_MAX


def known_booking_id(booking_id: int, message: str | None = None) -> int:
    """``booking_id`` itself, or the 404 when no booking can have it (outside the ids'
    column); ``message`` replaces ProcPlan's."""
    if not storable_id(booking_id):
        raise NotFound(
            message or f"Booking '{booking_id}' is not active or does not exist",
            code="unknown_booking",
        )
    return booking_id
