"""What routes need, hung on ``app.state.ctx`` by ``create_app``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import Request

from procplan.core.errors import InvalidRequest, NotFound
from procplan.core.timeutil import Instant, parse_instant
from procplan.service.agent_jobs import AgentJobs
from procplan.service.bookings import BookingService
from procplan.service.jobs import JobService
from procplan.service.metrics import SchedulerMetrics
from procplan.service.nodes import NodeService
from procplan.service.waiting import JobWaiter

USER_HEADER = "X-ProcPlan-User"
_INT_TEXT = re.compile(r"^[+-]?\d+$")


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
    nodes: NodeService | None = None
    agent_jobs: AgentJobs | None = None
    metrics: SchedulerMetrics | None = None


def ctx(request: Request) -> AppContext:
    context: AppContext = request.app.state.ctx
    return context


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; no body is ``{}`` (ProcPlan's rule)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Invalid JSON payload: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("JSON payload must be an object")
    return payload


# The widest integer the databases store (SQLite INTEGER, PostgreSQL BIGINT): larger ids
# cannot exist, and binding them makes SQLite raise OverflowError (a 500) instead of a 404.
SQL_INT_MAX = 2**63 - 1


def known_booking_id(booking_id: int) -> int:
    """``booking_id`` itself, or the ProcPlan 404 when it is outside the storable range."""
    if not -SQL_INT_MAX - 1 <= booking_id <= SQL_INT_MAX:
        raise NotFound(f"Booking '{booking_id}' is not active or does not exist")
    return booking_id


def strict_int(value: object, message: str) -> int:
    """An integer from JSON: ints and integer strings; never bools or floats."""
    if isinstance(value, bool):
        raise InvalidRequest(message)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.match(value.strip()):
        try:
            return int(value.strip())
        except ValueError:  # beyond Python's digit limit for str -> int: not a usable number
            raise InvalidRequest(message) from None
    raise InvalidRequest(message)


def parse_time(value: object, prefix: str = "") -> Instant:
    """An ISO 8601 instant; the error message is ``fromisoformat``'s, after ``prefix``."""
    try:
        return parse_instant(value)  # type: ignore[arg-type]
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRequest(f"{prefix}{exc}") from exc


def request_user(request: Request, fallback: str | None = None) -> str | None:
    """The acting user: the ``X-ProcPlan-User`` header until authentication lands."""
    value = request.headers.get(USER_HEADER, "").strip()
    return value or fallback
