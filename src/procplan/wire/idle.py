"""Idle reclaim's JSON (ADR 0013): a booking's idle state, on native routes only.

``BookingV1`` is pinned (its keys are a contract), so the state is its own object, served at
``GET /api/v1/bookings/{id}/idle`` and in the answer to ``keep``.
"""

from __future__ import annotations

from procplan.core.idle import IdleSettings, IdleState
from procplan.core.model import Booking
from procplan.core.timeutil import Instant, to_iso
from procplan.wire.base import Json
from procplan.wire.bookings import booking_v1

__all__ = ["idle_json", "kept_json"]


def idle_json(
    booking_id: int, state: IdleState, settings: IdleSettings, *, active: bool = True
) -> Json:
    """``idle_since``/``warned_at`` (ISO or null), when it will be released (an active
    booking, warned and still idle), whether the owner kept it, and the reason it was
    released."""
    release_at: Instant | None = None
    pending = active and not state.keep and state.released_reason is None
    if state.warned_at is not None and pending:
        release_at = state.warned_at + settings.grace_s
    return {
        "booking_id": booking_id,
        "idle_since": _iso(state.since),
        "warned_at": _iso(state.warned_at),
        "release_at": _iso(release_at),
        "keep": state.keep,
        "released_reason": state.released_reason,
    }


def kept_json(booking: Booking, state: IdleState, settings: IdleSettings) -> Json:
    """The answer to ``POST /api/v1/bookings/{id}/keep``."""
    return {"booking": booking_v1(booking), "idle": idle_json(booking.id, state, settings)}


def _iso(at: Instant | None) -> str | None:
    return None if at is None else to_iso(at)
