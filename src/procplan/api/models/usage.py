"""Queries of the usage routes (issue #14): ISO 8601 instants (naive is UTC)."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from procplan.api.models.fields import MAX_NAME, Integer, Name, Parsed, Timestamp
from procplan.api.models.jobs import parse_states
from procplan.core.jobs import JobState
from procplan.core.timeutil import Instant

_QUERY = ConfigDict(extra="ignore")


class ReportQuery(BaseModel):
    """``GET /api/v1/usage/report``: per user, tenant or node over ``[start, end)`` (default:
    the last 7 days up to now)."""

    model_config = _QUERY

    by: Annotated[str, Name(16)] = Field(default="user", description="user, tenant or node")
    start: Annotated[Instant | None, Timestamp()] = None
    end: Annotated[Instant | None, Timestamp()] = None


def parse_zone(value: Any) -> ZoneInfo:
    """An IANA time zone name ("Europe/Berlin") as a ``ZoneInfo``."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise ValueError("tz must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
        message = f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin"
        raise ValueError(message) from None


class DailyQuery(ReportQuery):
    """``GET /api/v1/usage/daily``: the report's query; ``tz`` makes the days that zone's
    calendar days (default: UTC days)."""

    tz: Annotated[
        ZoneInfo | None,
        Parsed(parse_zone, {"type": "string", "maxLength": 64}, code="invalid_tz"),
    ] = Field(default=None, description="an IANA time zone name; days are its calendar days")


class FinishedQuery(BaseModel):
    """``GET /api/v1/usage/jobs``: jobs that finished in ``[start, end)`` (default: the last
    7 days), newest first; filters are ANDed."""

    model_config = _QUERY

    user: Annotated[str | None, Name(MAX_NAME)] = None
    state: Annotated[
        frozenset[JobState] | None,
        Parsed(parse_states, {"type": "string", "maxLength": 200}),
    ] = Field(default=None, description="a comma list of finished states")
    start: Annotated[Instant | None, Timestamp()] = None
    end: Annotated[Instant | None, Timestamp()] = None
    limit: Annotated[int, Integer(1, 1000)] = 100
