"""Response shapes of the native booking API (requests are in ``api.models``)."""

from __future__ import annotations

from typing import Any

from procplan.core.model import Booking
from procplan.core.timeutil import to_iso
from procplan.store.job_conflicts import Preempted


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


def preempted_json(job: Preempted, booking: Booking, grace_s: int) -> dict[str, Any]:
    """One entry of ``conflicts_with_jobs`` (rule 4): an open-ended job of another user on the
    new booking's GPUs, and what happens to it when the booking begins (rule 3)."""
    after = "requeued" if job.kind == "batch" else "ended"
    return {
        "job_id": str(job.job_id),
        "user": job.user,
        "name": job.name,
        "kind": job.kind,
        "gpu_ids": list(job.gpu_ids),
        "claim_end": None,  # open-ended: only these may stay under a booking
        "preempt_at": to_iso(booking.start),
        "action": f"SIGTERM at {to_iso(booking.start)}, SIGKILL {grace_s} s later, then {after}",
    }
