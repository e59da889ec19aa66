"""Booking rows ⇄ ``core.model.Booking``: the one SELECT shape every booking read uses.

A booking's GPUs are its claims, in position order (``claimed``); its row holds none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, bindparam, select

from procplan.core.model import Booking, BookingStatus, Priority
from procplan.store.claimed import claimed_gpus, split_claimed
from procplan.store.tables import bookings, claims, nodes, users

_PRIORITIES = {int(p): p for p in Priority}
_STATUSES = {s.value: s for s in BookingStatus}

BOOKING_COLUMNS = (
    bookings.c.id,
    nodes.c.id,
    claimed_gpus(claims.c.booking_id == bookings.c.id),
    bookings.c.start_s,
    bookings.c.end_s,
    users.c.name,
    bookings.c.label,
    bookings.c.priority,
    bookings.c.status,
    bookings.c.created_at,
)


def booking_select() -> Select[Any]:
    """Bookings joined with their node id and user name, in ``row_to_booking`` order."""
    return select(*BOOKING_COLUMNS).join_from(bookings, nodes).join(users)


# Rows written after ``:after`` (the ledger version a reader has), version last.
CHANGED_SINCE = (
    booking_select().add_columns(bookings.c.version).where(bookings.c.version > bindparam("after"))
)


def row_to_booking(row: Sequence[Any]) -> Booking:
    """One row of ``booking_select`` as a Booking (claimed GPUs in order, enums looked up)."""
    bid, node_id, gpu_ids, start, end, user, label, priority, status, created = row
    return Booking(
        bid,
        node_id,
        split_claimed(gpu_ids),
        start,
        end,
        user,
        label,
        _PRIORITIES[priority],
        _STATUSES[status],
        created,
    )
