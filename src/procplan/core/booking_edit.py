"""Editing an active booking (ADR 0024): the request it becomes, what may change, what it newly
claims.

An edit is judged as the booking it would become: the same validation as a new booking (with
the allowances a booking already in force needs), then the ledger check of only the claims it
adds, so that what the booking already holds can never refuse it. Pure: ``now`` comes from the
caller.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from procplan.core.bookings import BookingLimits, validate_request
from procplan.core.errors import Conflict, InvalidRequest
from procplan.core.model import Booking, BookingRequest, Node, Priority
from procplan.core.timeutil import Instant

__all__ = ["BookingEdit", "Segment", "edited_request", "needs_room", "new_claims", "validate_edit"]


@dataclass(frozen=True, slots=True)
class BookingEdit:
    """What the owner asks to change; ``None`` keeps the current value."""

    start: Instant | None = None
    end: Instant | None = None
    gpu_ids: tuple[str, ...] | None = None
    label: str | None = None
    priority: Priority | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """Claims an edit adds: ``gpu_ids`` over ``[start, end)``."""

    gpu_ids: tuple[str, ...]
    start: Instant
    end: Instant


def edited_request(current: Booking, edit: BookingEdit) -> BookingRequest:
    """The booking ``current`` becomes. The same GPUs in another order are no change (the
    booking keeps its order), so that a client may send back what it read; an empty label is
    the owner's name, as for a new booking."""
    gpu_ids = current.gpu_ids
    if edit.gpu_ids is not None and sorted(edit.gpu_ids) != sorted(current.gpu_ids):
        gpu_ids = tuple(edit.gpu_ids)
    return BookingRequest(
        node_id=current.node_id,
        start=current.start if edit.start is None else edit.start,
        end=current.end if edit.end is None else edit.end,
        user=current.user,
        label=current.label if edit.label is None else (edit.label or current.user),
        priority=current.priority if edit.priority is None else edit.priority,
        gpu_ids=gpu_ids,
    )


def validate_edit(
    current: Booking, req: BookingRequest, node: Node | None, now: Instant, limits: BookingLimits
) -> None:
    """Raise unless ``current`` may become ``req`` at ``now``.

    A booking that has started keeps its start and GPUs (409 ``started``): its owner may be
    computing on them. Otherwise the rules of a new booking apply (``validate_request``),
    except that what does not change is not judged again: a kept start may lie further in the
    past than a new one could, a kept label may predate today's length limit. A window that
    changes must still end in the future (ending now is a release)."""
    if current.start <= now and (req.start != current.start or req.gpu_ids != current.gpu_ids):
        raise Conflict(
            f"Booking {current.id} has started; only its end, label and priority can change",
            code="started",
        )
    allowed = limits
    if req.start == current.start:
        allowed = replace(allowed, max_past_s=max(allowed.max_past_s, now - current.start))
    if req.label == current.label:
        allowed = replace(allowed, max_label_len=max(allowed.max_label_len, len(current.label)))
    validate_request(req, node, now, allowed, whole_hours=False)
    moved = (req.start, req.end) != (current.start, current.end)
    if moved and req.end <= now:
        raise InvalidRequest("New end must be in the future; use release to end now")


def needs_room(current: Booking, req: BookingRequest) -> bool:
    """Does the edit take a new start or GPUs the booking does not hold (what a drained node
    refuses, ADR 0020)? Moving the end or shrinking does not."""
    return req.start != current.start or not set(req.gpu_ids or ()) <= set(current.gpu_ids)


def new_claims(current: Booking, req: BookingRequest) -> list[Segment]:
    """The claims ``req`` holds that ``current`` does not: added GPUs over the whole new
    window, kept GPUs over the new window's parts before the old start and after the old end.
    Only these are checked against the ledger: the old claims were checked when made, and a
    job the owner let onto the booking must not refuse a label change."""
    gpu_ids = tuple(req.gpu_ids or ())
    kept = tuple(g for g in gpu_ids if g in current.gpu_ids)
    added = tuple(g for g in gpu_ids if g not in current.gpu_ids)
    found: list[Segment] = []
    if added:
        found.append(Segment(added, req.start, req.end))
    if kept and req.start < current.start:
        found.append(Segment(kept, req.start, min(current.start, req.end)))
    if kept and req.end > current.end:
        found.append(Segment(kept, max(current.end, req.start), req.end))
    return found
