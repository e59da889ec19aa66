"""Validation of booking requests and availability windows, with ProcPlan's exact messages.

Only checks that need no ledger live here (shape, time, label, node membership, capacity);
whether the GPUs are free is the ledger's answer, re-checked in the transaction that writes.
The order of checks is part of the compatibility contract: when a request is wrong in several
ways, clients see the same first message ProcPlan gave.
"""

from __future__ import annotations

from dataclasses import dataclass

from procplan.core.errors import Conflict, InvalidRequest
from procplan.core.ledger.refusals import NO_FREE_GPUS
from procplan.core.model import Booking, BookingRequest, Node
from procplan.core.text import name_problem
from procplan.core.timeutil import DAY, HOUR, MINUTE, RANGE_MESSAGE, Instant, in_range, to_iso

__all__ = [
    "MAX_OCCURRENCES",
    "BookingLimits",
    "check_started",
    "human_duration",
    "validate_request",
    "validate_window",
    "weekly_occurrences",
]


@dataclass(frozen=True, slots=True)
class BookingLimits:
    """Configurable guards that ProcPlan lacked (fixes listed in COMPAT.md)."""

    max_duration_s: int = 31 * DAY
    max_past_s: int = HOUR
    max_label_len: int = 64
    max_window_s: int = 400 * DAY
    max_answer_bytes: int = 24 << 20  # the largest view one request may ask for


def human_duration(seconds: int) -> str:
    """``3600`` → ``1 hour``, ``31 * DAY`` → ``31 days``: a limit in its largest whole unit."""
    for unit, name in ((DAY, "day"), (HOUR, "hour"), (MINUTE, "minute")):
        if seconds >= unit and seconds % unit == 0:
            count = seconds // unit
            return f"{count} {name}" if count == 1 else f"{count} {name}s"
    return f"{seconds} second" if seconds == 1 else f"{seconds} seconds"


def _check_alignment(start: Instant, end: Instant, whole_hours: bool) -> None:
    """Compat endpoints book whole hours; the native API takes minute precision. Both ends must
    also be writable timestamps: a start plus a duration can pass year 9999."""
    for name, instant in (("start", start), ("end", end)):
        if not in_range(instant):
            raise InvalidRequest(f"{name} {RANGE_MESSAGE}", code="out_of_range")
    if whole_hours:
        if start % HOUR or end % HOUR:
            raise InvalidRequest("Timestamps must align exactly on the hour", code="misaligned")
    elif start % MINUTE or end % MINUTE:
        raise InvalidRequest("Timestamps must align on whole minutes", code="misaligned")


def _check_label(label: str, limits: BookingLimits) -> None:
    stripped = label.strip()
    if not stripped:
        raise InvalidRequest("User label must not be empty", code="invalid_label")
    if len(stripped) > limits.max_label_len:
        raise InvalidRequest(
            f"User label must be at most {limits.max_label_len} characters", code="invalid_label"
        )
    why = name_problem(stripped)
    if why is not None:
        raise InvalidRequest(f"User label {why}", code="invalid_label")


def _check_gpu_selection(req: BookingRequest, node: Node) -> None:
    """Explicit ids must be distinct members of the node; otherwise a count that could fit."""
    if req.gpu_ids:
        seen: set[str] = set()
        for gpu_id in req.gpu_ids:
            if gpu_id in seen:
                raise InvalidRequest(f"Duplicate GPU id '{gpu_id}'", code="duplicate_gpu")
            seen.add(gpu_id)
        if not seen.issubset(node.gpu_ids):
            raise InvalidRequest(
                "One or more GPUs do not belong to the specified node", code="gpu_not_in_node"
            )
        return
    if req.gpu_count is None or req.gpu_count <= 0:
        raise InvalidRequest(
            "Either gpu_ids or a positive gpu_count must be provided", code="no_gpu_selection"
        )
    if req.gpu_count > len(node.gpus):
        raise InvalidRequest(NO_FREE_GPUS, code="not_enough_gpus")


def validate_request(
    req: BookingRequest,
    node: Node | None,
    now: Instant,
    limits: BookingLimits,
    *,
    whole_hours: bool,
) -> None:
    """Raise ``InvalidRequest`` with the first problem of ``req``; ``node`` is the looked-up
    ``req.node_id`` (``None`` when unknown). ``now`` comes from the caller: the core reads no clock.
    """
    _check_alignment(req.start, req.end, whole_hours)
    if req.end <= req.start:
        raise InvalidRequest("Booking end must be after start", code="invalid_window")
    _check_label(req.label, limits)
    if node is None:
        raise InvalidRequest(f"Unknown node id '{req.node_id}'", code="unknown_node")
    if req.start < now - limits.max_past_s:
        raise InvalidRequest(
            f"Booking start must not be more than {human_duration(limits.max_past_s)} in the past",
            code="start_in_past",
        )
    if req.end - req.start > limits.max_duration_s:
        raise InvalidRequest(
            f"Booking must not be longer than {human_duration(limits.max_duration_s)}",
            code="too_long",
        )
    _check_gpu_selection(req, node)


def validate_window(
    start: Instant, end: Instant, limits: BookingLimits, *, whole_hours: bool
) -> None:
    """Check an availability window; the length cap bounds the work one request can cause."""
    _check_alignment(start, end, whole_hours)
    if end <= start:
        raise InvalidRequest("Availability end must be after start", code="invalid_window")
    if end - start > limits.max_window_s:
        raise InvalidRequest(
            f"Availability window must not be longer than {human_duration(limits.max_window_s)}",
            code="window_too_long",
        )


def check_started(booking: Booking, now: Instant) -> None:
    """An early release (rule 5) ends a booking that is running. One that has not begun has
    nothing to end: releasing it would leave a zero-length "completed" booking, so the native
    API refuses (409 ``not_started``) and points to cancel. ProcPlan's ``mark_done`` keeps its
    documented 200 and does not call this."""
    if now < booking.start:
        raise Conflict(
            f"Booking {booking.id} has not started yet (it starts {to_iso(booking.start)}): "
            "cancel it instead of releasing it",
            code="not_started",
        )


MAX_OCCURRENCES = 52
WEEK = 7 * DAY


def weekly_occurrences(
    start: Instant, end: Instant, until: Instant, cap: int = MAX_OCCURRENCES
) -> list[tuple[Instant, Instant]]:
    """The windows of a weekly series: ``[start, end)`` and every week after whose start is
    not after ``until`` (a date means through that day: the caller passes its last instant).
    Refused (400) when a window is longer than a week (the series would overlap itself),
    ``until`` is before the first start, or there would be more than ``cap``."""
    if end - start > WEEK:
        raise InvalidRequest(
            "A weekly booking must not be longer than 7 days", code="invalid_repeat"
        )
    if until < start:
        raise InvalidRequest("'repeat.until' must not be before the start", code="invalid_repeat")
    count = (until - start) // WEEK + 1
    if count > cap:
        raise InvalidRequest(
            f"The series would have {count} bookings; at most {cap} are allowed",
            code="too_many_occurrences",
        )
    return [(start + i * WEEK, end + i * WEEK) for i in range(count)]
