"""Editing an active booking (ADR 0024): one write transaction under the node lock.

The booking is read, shown to the caller's owner check, turned into the booking it becomes by
the caller's plan (the pure core's ``edited_request``/``validate_edit``, run on the node read
here), and only the claims it adds are checked against the ledger — its own claims never stand
in its way. Then the row and its claims are rewritten, under the next ledger version so that
every mirror follows. PostgreSQL's ``claims_no_overlap`` constraint still guards the result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, delete, update
from sqlalchemy.exc import IntegrityError

from procplan.core.booking_edit import needs_room, new_claims
from procplan.core.errors import NotFound
from procplan.core.ledger import Ask, Hold, Preempted, Refusal, Verdict, judge
from procplan.core.model import Booking, BookingRequest, Node
from procplan.core.timeutil import Instant
from procplan.store.bookings_repo import (
    BookingStore,
    as_node,
    get_booking,
    lock_node,
    next_ledger_version,
    node_gpus,
    overlap_conflict,
)
from procplan.store.ledger_holds import read_holds, settle
from procplan.store.tables import bookings, claims

# The caller's plan: the booking ``current`` becomes on ``node`` (raises to refuse).
Plan = Callable[[Booking, Node], BookingRequest]
Allowed = Callable[[Booking], None]

_UPDATE_BOOKING = (
    update(bookings)
    .where(bookings.c.id == bindparam("b_id"))
    .values(
        start_s=bindparam("new_start"),
        end_s=bindparam("new_end"),
        label=bindparam("new_label"),
        priority=bindparam("new_priority"),
        updated_at=bindparam("now"),
        version=bindparam("new_version"),
    )
)
_MOVE_CLAIMS = (
    update(claims)
    .where(claims.c.booking_id == bindparam("b_id"))
    .values(start_s=bindparam("new_start"), end_s=bindparam("new_end"))
)
_DROP_CLAIMS = delete(claims).where(claims.c.booking_id == bindparam("b_id"))
_INSERT_CLAIM = claims.insert()


class Edited(NamedTuple):
    """The booking as edited, and the open-ended jobs of others its new claims will preempt
    when it begins (rule 4, as ``create`` reports them)."""

    booking: Booking
    preempted: list[Preempted]


def edit_booking(
    store: BookingStore, booking_id: int, now: Instant, plan: Plan, allowed: Allowed | None = None
) -> Edited:
    """Edit an active booking atomically; ``allowed`` (the owner check) sees it first.
    Raises ``NotFound`` (not active), the plan's refusals, or ``BookingConflict``."""
    try:
        return store.writes.run(lambda conn: _edit_in(store, conn, booking_id, now, plan, allowed))
    except IntegrityError as exc:
        raise overlap_conflict(exc) from exc


def _edit_in(
    store: BookingStore,
    conn: Connection,
    booking_id: int,
    now: Instant,
    plan: Plan,
    allowed: Allowed | None,
) -> Edited:
    current = get_booking(conn, booking_id)
    if current is None or not current.is_active:
        raise NotFound(f"Booking '{booking_id}' is not active or does not exist")
    if allowed is not None:
        allowed(current)
    found = node_gpus(conn, current.node_id)
    req = plan(current, as_node(current.node_id, found.gpu_pks))
    lock_node(store.store, conn, found, current.node_id if needs_room(current, req) else None)
    preempted = _check(conn, found.gpu_pks, current, req)
    _write(conn, current, req, found.gpu_pks, now)
    gpu_ids = tuple(req.gpu_ids or ())
    edited = current._replace(
        start=req.start, end=req.end, gpu_ids=gpu_ids, label=req.label, priority=req.priority
    )
    return Edited(edited, preempted)


def _check(
    conn: Connection, gpu_pks: dict[str, int], current: Booking, req: BookingRequest
) -> list[Preempted]:
    """Judge the claims the edit adds (``new_claims``) with the ledger rules; a refusal is the
    one a new booking of the whole edited window would get (holders, next free window)."""
    gpu_ids = tuple(req.gpu_ids or ())
    per_gpu: dict[str, list[Verdict]] = {gpu_id: [] for gpu_id in gpu_ids}
    for segment in new_claims(current, req):
        ask = Ask.booking(req.user, segment.start, segment.end, own_id=current.id)
        asked = {g: gpu_pks[g] for g in segment.gpu_ids if g in gpu_pks}
        holds = read_holds(conn, asked, segment.start, segment.end)
        for gpu_id in segment.gpu_ids:
            per_gpu[gpu_id].append(judge(ask, holds.get(gpu_id, ())))
    whole = Ask.booking(req.user, req.start, req.end, own_id=current.id)
    verdicts = [(gpu_id, _merged(found)) for gpu_id, found in per_gpu.items()]
    return settle(conn, gpu_pks, gpu_ids, whole, verdicts)


def _merged(verdicts: Sequence[Verdict]) -> Verdict:
    """One GPU's verdicts over several segments as one: a booking in the way first (rule 1),
    then a job; the holds in the way and the jobs to preempt of all of them, each once."""
    refusals = {v.refusal for v in verdicts}
    refusal = next((r for r in (Refusal.BOOKED, Refusal.JOB_HOLDS) if r in refusals), None)
    blocking = _once(h for v in verdicts if v.refusal is refusal for h in v.blocking)
    return Verdict(refusal, blocking, _once(h for v in verdicts for h in v.preempts))


def _once(holds: Iterable[Hold]) -> tuple[Hold, ...]:
    return tuple(dict.fromkeys(holds))


def _write(
    conn: Connection,
    current: Booking,
    req: BookingRequest,
    gpu_pks: dict[str, int],
    now: Instant,
) -> None:
    """The row, under the next ledger version; its claims moved in place when the GPUs stay,
    else replaced (positions in the new order)."""
    conn.execute(
        _UPDATE_BOOKING,
        {
            "b_id": current.id,
            "new_start": req.start,
            "new_end": req.end,
            "new_label": req.label,
            "new_priority": int(req.priority),
            "now": now,
            "new_version": next_ledger_version(conn),
        },
    )
    gpu_ids = tuple(req.gpu_ids or ())
    if gpu_ids == current.gpu_ids:
        params = {"b_id": current.id, "new_start": req.start, "new_end": req.end}
        conn.execute(_MOVE_CLAIMS, params)
        return
    conn.execute(_DROP_CLAIMS, {"b_id": current.id})
    rows = [
        {
            "booking_id": current.id,
            "gpu_pk": gpu_pks[gpu_id],
            "start_s": req.start,
            "end_s": req.end,
            "active": True,
            "position": position,
        }
        for position, gpu_id in enumerate(gpu_ids)
    ]
    conn.execute(_INSERT_CLAIM, rows)
