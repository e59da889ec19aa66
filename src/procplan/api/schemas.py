"""Request bodies and response shapes of the native API (documented in OpenAPI at /docs)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from procplan.core.model import Booking
from procplan.core.timeutil import to_iso


class BookingCreate(BaseModel):
    """``POST /api/v1/bookings``: GPUs by id or by count; end or duration."""

    model_config = ConfigDict(extra="forbid")

    node_id: str = Field(min_length=1)
    gpu_ids: list[str] | None = None
    gpu_count: StrictInt | None = Field(default=None, gt=0)
    start: str = Field(description="ISO 8601 instant; naive means UTC")
    end: str | None = Field(default=None, description="ISO 8601; or give duration_minutes")
    duration_minutes: StrictInt | None = Field(default=None, gt=0)
    priority: str = "medium"
    label: str | None = Field(default=None, description="shown on calendars; default: user")
    user: str | None = Field(default=None, description="default: the X-ProcPlan-User header")


class BookingPatch(BaseModel):
    """``PATCH /api/v1/bookings/{id}``: move the end (extend or shorten)."""

    model_config = ConfigDict(extra="forbid")

    end: str


def booking_v1(booking: Booking) -> dict[str, Any]:
    """BookingV1: the native booking object."""
    return {
        "id": booking.id,
        "node_id": booking.node_id,
        "gpu_ids": list(booking.gpu_ids),
        "start": to_iso(booking.start),
        "end": to_iso(booking.end),
        "user": booking.user,
        "label": booking.label,
        "priority": booking.priority.label,
        "status": booking.status.value,
        "created_at": to_iso(booking.created_at),
    }
