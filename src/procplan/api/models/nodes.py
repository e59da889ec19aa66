"""Queries of the node, history, log and calendar routes; the body of a node drain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from procplan.api.models.fields import (
    MAX_ITEMS,
    MAX_LABEL,
    MAX_NAME,
    Checked,
    Integer,
    Name,
    Timestamp,
    problem,
)
from procplan.core.timeutil import HOUR, MINUTE, Instant

DEFAULT_LOG_LIMIT = 64 * 1024
MAX_LOG_LIMIT = 4 * 1024 * 1024
_QUERY = ConfigDict(extra="ignore")


@dataclass(frozen=True, slots=True)
class NodeIds(Checked):
    """A comma-separated list of node ids (blank entries skipped; the service answers each
    node once)."""

    def check(self, value: Any, field: str) -> list[str]:
        if not isinstance(value, str):
            raise problem(f"{field} must be a comma-separated list of node ids")
        ids = [n.strip() for n in value.split(",") if n.strip()]
        if len(ids) > MAX_ITEMS:
            raise problem(f"{field} must name at most {MAX_ITEMS} nodes")
        name = Name(MAX_NAME)
        return [name.check(n, field) for n in ids]

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "description": "comma-separated node ids"}


class CalendarQuery(BaseModel):
    """``GET /api/v1/calendar``: per GPU, the claims overlapping ``[start, end)``."""

    model_config = _QUERY

    start: Annotated[Instant, Timestamp()]
    end: Annotated[Instant, Timestamp()]
    node_ids: Annotated[list[str] | None, NodeIds()] = Field(
        default=None, description="comma-separated; absent means every node"
    )


class HistoryQuery(BaseModel):
    """``GET /api/v1/nodes/{id}/history``: one metric per GPU in steps of ``step`` seconds
    (default: the last 6 hours in 1-minute steps)."""

    model_config = _QUERY

    metric: Annotated[str, Name(32)] = "utilization"
    agg: Annotated[str, Name(8)] = "avg"
    start: Annotated[Instant | None, Timestamp()] = None
    end: Annotated[Instant | None, Timestamp()] = None
    step: Annotated[int, Integer(1, 366 * 24 * HOUR)] = MINUTE


class LogQuery(BaseModel):
    """``GET /api/v1/jobs/{id}/logs``: raw bytes from ``offset``, at most ``limit``."""

    model_config = _QUERY

    stream: Annotated[str, Name(8)] = "stdout"
    offset: Annotated[int, Integer(0, 2**53)] = 0
    limit: Annotated[int, Integer(1, MAX_LOG_LIMIT)] = DEFAULT_LOG_LIMIT
    run: Annotated[int | None, Integer(0, 1_000_000)] = None  # default: every run, in order
    rank: Annotated[int, Integer(0, 9_999)] = 0  # a multi-node job's node rank


class NodeDrain(BaseModel):
    """``POST /api/v1/nodes/{id}/drain``: why (shown in ``procplan nodes``, the board and
    the owners' notes, so printable characters only, like a booking label)."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str | None, Name(MAX_LABEL, empty_ok=True)] = Field(
        default=None, description="why the node is drained (empty or absent: no reason)"
    )
