"""Every JSON shape of a booking, one function per shape, so that no route or view builds its
own (two renderings of one booking drift apart).

========================  ==========================  =========================================
shape                     function                    sent by
========================  ==========================  =========================================
ProcPlan's object ``B``   ``procplan_bookings``       availability hours and slots (COMPAT §1);
                                                      day slots add their overlap keys to it
``POST /api/book`` 201    ``procplan_booked``         ``/api/book``
native ``BookingV1``      ``booking_v1``              every ``/api/v1/bookings`` answer
native calendar claim     ``calendar_claims``         ``/api/v1/calendar``
holder of a GPU           ``booking_holder``          ``/api/v1/nodes``
refused booking (409)     ``booking_conflict``        ``POST /api/v1/bookings`` and ``/check``
weekly series             ``weekly_json``,            ``POST /api/v1/bookings`` with ``repeat``
                          ``weekly_refused``
========================  ==========================  =========================================

The calendar shapes come in batches (a loop with locals, since they run per booking of a
year-long view); the others one at a time. Key order follows COMPAT.md and the ADRs: JSON
bytes depend on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from procplan.core.errors import Conflict
from procplan.core.ledger import BookingConflict, Hold, Holder, Preempted, Preview
from procplan.core.model import Booking, BookingRequest
from procplan.core.timeutil import to_iso
from procplan.wire.base import ISO, PRIORITY_LABELS, STATUS_WIRE, Json

__all__ = [
    "booking_conflict",
    "booking_created",
    "booking_holder",
    "booking_v1",
    "bookings_page",
    "calendar_claims",
    "preempted_json",
    "procplan_booked",
    "procplan_booking",
    "procplan_bookings",
    "weekly_json",
    "weekly_refused",
]


# ---- ProcPlan (COMPAT §1) ------------------------------------------------------------------


def procplan_bookings(items: Sequence[Booking]) -> list[Json]:
    """ProcPlan's public booking object ``B`` of each booking (``user_label`` is the
    booking's label). Bookings of the same GPUs share one ``gpu_ids`` list (most of a node's
    bookings name one GPU); the objects themselves are new, the caller's to extend."""
    memo_get, status_wire, labels = ISO.cache.get, STATUS_WIRE, PRIORITY_LABELS
    gpu_lists: dict[tuple[str, ...], list[str]] = {}
    out: list[Json] = []
    append = out.append
    for b in items:
        s, e = b.start, b.end
        gpu_list = gpu_lists.get(b.gpu_ids)
        if gpu_list is None:
            gpu_list = gpu_lists[b.gpu_ids] = list(b.gpu_ids)
        append(
            {
                "id": b.id,
                "user_label": b.label,
                "start": memo_get(s) or ISO(s),
                "end": memo_get(e) or ISO(e),
                "status": status_wire[b.status],
                "gpu_ids": gpu_list,
                "priority": labels[b.priority],
            }
        )
    return out


def procplan_booking(b: Booking) -> Json:
    """``B`` of one booking."""
    return procplan_bookings((b,))[0]


def procplan_booked(b: Booking) -> Json:
    """The 201 answer of ``POST /api/book``."""
    return {
        "booking_id": b.id,
        "node_id": b.node_id,
        "gpu_ids": list(b.gpu_ids),
        "start": to_iso(b.start),
        "end": to_iso(b.end),
        "user_label": b.label,
        "priority": b.priority.label,
    }


# ---- native (/api/v1) ----------------------------------------------------------------------


def booking_v1(b: Booking) -> Json:
    """BookingV1: the native booking object."""
    return {
        "id": b.id,
        "node_id": b.node_id,
        "gpu_ids": list(b.gpu_ids),
        "start": to_iso(b.start),
        "end": to_iso(b.end),
        "user": b.user,
        "label": b.label,
        "priority": b.priority.label,
        "status": b.status.value,
        "created_at": to_iso(b.created_at),
    }


def bookings_page(rendered: list[Json], total: int) -> Json:
    """``GET /api/v1/bookings``: a page of ``booking_v1`` objects and the total."""
    return {"bookings": rendered, "total": total}


def preempted_json(job: Preempted, booking: Booking, grace_s: int) -> Json:
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


def booking_preview(preview: Preview, grace_s: int) -> Json:
    """The answer of ``POST /api/v1/bookings/check``: what booking now would take and which
    jobs it would preempt (``conflicts_with_jobs``, as ``booking_created`` has them)."""
    as_booking = Booking(
        0, preview.node_id, preview.gpu_ids, preview.start, preview.end, preview.user, ""
    )
    return {
        "node_id": preview.node_id,
        "gpu_ids": list(preview.gpu_ids),
        "start": to_iso(preview.start),
        "end": to_iso(preview.end),
        "user": preview.user,
        "conflicts_with_jobs": [
            preempted_json(job, as_booking, grace_s) for job in preview.preempted
        ],
    }


def booking_created(b: Booking, conflicts: list[Json]) -> Json:
    """The 201 answer of ``POST /api/v1/bookings``: the booking and the open-ended jobs of
    others it will preempt (``preempted_json`` entries)."""
    return {"booking": booking_v1(b), "conflicts_with_jobs": conflicts}


def booking_edited(b: Booking, conflicts: list[Json]) -> Json:
    """The answer of ``PATCH /api/v1/bookings/{id}`` (ADR 0024): the booking as edited and,
    only when its new claims cover open-ended jobs of others, ``conflicts_with_jobs`` (as
    ``booking_created`` has them), so that clients of the end-only PATCH see what they saw."""
    body = booking_v1(b)
    if conflicts:
        body["conflicts_with_jobs"] = conflicts
    return body


def calendar_claims(items: Sequence[Booking]) -> list[Json]:
    """The claim object of ``/api/v1/calendar`` of each booking: its real (unclipped) start
    and end."""
    memo_get, status_wire, labels = ISO.cache.get, STATUS_WIRE, PRIORITY_LABELS
    out: list[Json] = []
    append = out.append
    for b in items:
        s, e = b.start, b.end
        append(
            {
                "booking_id": b.id,
                "start": memo_get(s) or ISO(s),
                "end": memo_get(e) or ISO(e),
                "user": b.user,
                "label": b.label,
                "priority": labels[b.priority],
                "status": status_wire[b.status],
            }
        )
    return out


def booking_holder(b: Booking) -> Json:
    """A GPU's holder in ``/api/v1/nodes`` when a booking (not a running job) holds it."""
    return {
        "kind": "booking",
        "booking_id": b.id,
        "user": b.user,
        "label": b.label,
        "end": to_iso(b.end),
    }


def _conflict_holder(h: Hold) -> Json:
    """Who is in a refused booking's way. A job's name is not shown (only its id and user):
    bookings' labels are public on the calendar, job names are not."""
    return {
        "gpu_id": h.gpu_id,
        "kind": h.holder.value,
        "id": h.holder_id,
        "user": h.user,
        "label": h.label if h.holder is Holder.BOOKING else "",
        "start": to_iso(h.start),
        "end": None if h.open_ended else to_iso(h.end),
    }


def booking_conflict(exc: BookingConflict) -> Json:
    """Native 409 body of a refused booking (issue #17): the usual ``error``/``status``/
    ``code`` (the message with who holds the GPUs and the next free window appended), then
    ``holders`` and ``next_free`` (``{"start", "end", "gpu_ids"}`` or ``null``)."""
    slot = exc.next_free
    return {
        "error": f"{exc.message} ({exc.hint()})",
        "status": exc.status,
        "code": exc.code,
        "holders": [_conflict_holder(h) for h in exc.holders],
        "next_free": None
        if slot is None
        else {"start": to_iso(slot.start), "end": to_iso(slot.end), "gpu_ids": list(slot.gpu_ids)},
    }


class SeriesLike(Protocol):
    """``store.bookings_repo.Series`` as this module reads it (wire imports only core)."""

    @property
    def bookings(self) -> list[Booking]: ...
    @property
    def preempted(self) -> list[tuple[int, Preempted]]: ...
    @property
    def refused(self) -> list[tuple[BookingRequest, Conflict]]: ...


def _refused_one(req: BookingRequest, exc: Conflict) -> Json:
    body: Json = {"start": to_iso(req.start), "end": to_iso(req.end)}
    if isinstance(exc, BookingConflict):
        return {**body, **booking_conflict(exc)}
    return {**body, "error": exc.message, "status": exc.status, "code": exc.code}


def weekly_json(series: SeriesLike, grace_s: int) -> Json:
    """A weekly series (issue #17): ``booking`` (the first, as a single booking's answer has
    it), ``bookings`` (all; ids 0 in a dry run), ``conflicts_with_jobs`` and ``conflicts``
    (the refused occurrences: ``start``, ``end`` and the refusal's error body)."""
    made = series.bookings
    return {
        "booking": booking_v1(made[0]) if made else None,
        "bookings": [booking_v1(b) for b in made],
        "conflicts_with_jobs": [
            preempted_json(job, made[i], grace_s) for i, job in series.preempted
        ],
        "conflicts": [_refused_one(req, exc) for req, exc in series.refused],
    }


def weekly_refused(series: SeriesLike) -> Json:
    """409 of a series of which some occurrences are refused: nothing was booked."""
    total = len(series.bookings) + len(series.refused)
    first = series.refused[0][1]
    return {
        "error": f"{len(series.refused)} of {total} weekly bookings are refused, so none was "
        f"made; the first: {first.message}",
        "status": 409,
        "code": "series_conflict",
        "conflicts": [_refused_one(req, exc) for req, exc in series.refused],
    }
