"""Requests of the native booking routes (``/api/v1/bookings``), minute precision."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from procplan.api.models.fields import (
    INT32_MAX,
    INT64_MAX,
    MAX_ITEMS,
    MAX_LABEL,
    MAX_NAME,
    Integer,
    Name,
    Parsed,
    Strings,
    Timestamp,
    problem,
)
from procplan.core.model import BookingStatus, Priority
from procplan.core.timeutil import MINUTE, Instant

_PRIORITY = Parsed(
    Priority.parse,
    {"type": "string", "enum": ["low", "medium", "high"]},
    code="invalid_priority",
)


def _status(value: object) -> BookingStatus:
    if isinstance(value, str):
        try:
            return BookingStatus(value.strip().lower())
        except ValueError:
            pass
    raise ValueError("status must be one of active, completed, cancelled")


class Repeat(BaseModel):
    """``repeat``: a weekly series through the UTC day of ``until`` (issue #17)."""

    model_config = ConfigDict(extra="forbid")

    every: Literal["week"] = Field(description="only 'week'")
    until: Annotated[Instant, Timestamp()] = Field(
        description="a UTC date (or timestamp: its day counts); the last booking starts that day"
    )


class BookingCreate(BaseModel):
    """``POST /api/v1/bookings``: GPUs by id or by count; ``end`` or ``duration_minutes``."""

    model_config = ConfigDict(extra="forbid")

    node_id: Annotated[str, Name(MAX_NAME)]
    gpu_ids: Annotated[list[str] | None, Strings(MAX_ITEMS, MAX_NAME, names=True)] = None
    gpu_count: Annotated[int | None, Integer(1, INT32_MAX, strings=False)] = None
    start: Annotated[Instant, Timestamp()] = Field(description="ISO 8601; naive means UTC")
    end: Annotated[Instant | None, Timestamp()] = Field(
        default=None, description="ISO 8601; or give duration_minutes"
    )
    duration_minutes: Annotated[int | None, Integer(1, INT32_MAX, strings=False)] = None
    priority: Annotated[Priority, _PRIORITY] = Priority.MEDIUM
    label: Annotated[str | None, Name(MAX_LABEL, empty_ok=True)] = Field(
        default=None, description="shown on calendars; default: user"
    )
    user: Annotated[str | None, Name(MAX_NAME, empty_ok=True)] = Field(
        default=None, description="default: the signed-in user (another user: admins only)"
    )
    repeat: Repeat | None = Field(default=None, description="a weekly series, at most 52")
    dry_run: bool = Field(default=False, description="with repeat: list, book nothing")

    @model_validator(mode="after")
    def _one_end(self) -> BookingCreate:
        if (self.end is None) == (self.duration_minutes is None):
            raise problem("give exactly one of 'end' and 'duration_minutes'")
        if self.dry_run and self.repeat is None:
            raise problem("'dry_run' goes with 'repeat'; preview one booking with /bookings/check")
        return self

    def end_instant(self) -> Instant:
        """``end``, or ``start`` plus the duration (checked against year 9999 by the core)."""
        if self.end is not None:
            return self.end
        return self.start + (self.duration_minutes or 0) * MINUTE


class BookingPatch(BaseModel):
    """``PATCH /api/v1/bookings/{id}``: edit an active booking (ADR 0024). Every field is
    optional, at least one is given; what is left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    start: Annotated[Instant | None, Timestamp()] = Field(
        default=None, description="new start (not once the booking has started)"
    )
    end: Annotated[Instant | None, Timestamp()] = Field(default=None, description="new end")
    gpu_ids: Annotated[list[str] | None, Strings(MAX_ITEMS, MAX_NAME, names=True)] = Field(
        default=None, description="the node's GPUs it holds (not once it has started)"
    )
    label: Annotated[str | None, Name(MAX_LABEL, empty_ok=True)] = Field(
        default=None, description="shown on calendars; empty: the owner's name"
    )
    priority: Annotated[Priority | None, _PRIORITY] = None

    @model_validator(mode="after")
    def _something(self) -> BookingPatch:
        if all(v is None for v in (self.start, self.end, self.gpu_ids, self.label, self.priority)):
            raise problem("give at least one of 'start', 'end', 'gpu_ids', 'label', 'priority'")
        if self.gpu_ids is not None and not self.gpu_ids:
            raise problem("'gpu_ids' must not be empty")
        return self


class BookingListQuery(BaseModel):
    """``GET /api/v1/bookings``: filters ANDed; ``start``/``end`` keep those overlapping."""

    model_config = ConfigDict(extra="ignore")

    node: Annotated[str | None, Name(MAX_NAME)] = None
    gpu: Annotated[str | None, Name(MAX_NAME)] = None
    user: Annotated[str | None, Name(MAX_NAME)] = None
    status: Annotated[
        BookingStatus | None,
        Parsed(
            _status,
            {"type": "string", "enum": ["active", "completed", "cancelled"]},
            code="invalid_status",
        ),
    ] = None
    start: Annotated[Instant | None, Timestamp()] = None
    end: Annotated[Instant | None, Timestamp()] = None
    limit: Annotated[int, Integer(1, 1000)] = 100
    offset: Annotated[int, Integer(0, INT64_MAX)] = 0
