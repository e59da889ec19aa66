"""Response shapes of the native booking API (requests are in ``api.models``)."""

from __future__ import annotations

from typing import Any

from procplan.core.model import Booking
from procplan.core.timeutil import to_iso


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
