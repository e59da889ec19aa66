"""Node maintenance in the database (ADR 0020): drain, resume and remove, each one transaction.

The node row carries the drain (``drain_reason``, ``drained_at``, ``drained_by``) and the
removal (``removed_at``, with ``retired``). Every change bumps ``topology_version``, which every
process already watches, so other server processes and the planner's cached view see it on
their next read without a new counter. A drain writes its notes to the owners of the node's
current and future bookings in the same transaction (the outbox rule of ADR 0012: a note
exists exactly when its change was committed).

``refuse_drained`` is the booking writer's check, on the node row as read inside the booking's
own write transaction after the node lock (SQLite: the write lock, already held when the
writer read the node with its GPUs; PostgreSQL: the per-node advisory lock, which a drain takes
too, so ``refuse_if_draining`` reads the row again under it). A booking either sees the drain
or is committed before the drain looks for the owners to tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select, text, update

from procplan.core.errors import Conflict, NotFound
from procplan.core.maintenance import Drain, NodeRecord
from procplan.core.model import Booking, BookingStatus
from procplan.core.notes import booking_node_draining
from procplan.core.timeutil import Instant, to_iso
from procplan.store.engine import Store
from procplan.store.outbox import enqueue
from procplan.store.rows import booking_select, row_to_booking
from procplan.store.tables import bookings, nodes
from procplan.store.topology_repo import BUMP_TOPOLOGY_VERSION, TOPOLOGY_VERSION

__all__ = ["MaintenanceStore", "refuse_drained", "refuse_if_draining"]

_COLUMNS = (
    nodes.c.pk,
    nodes.c.id,
    nodes.c.retired,
    nodes.c.drain_reason,
    nodes.c.drained_at,
    nodes.c.drained_by,
    nodes.c.removed_at,
)
_DRAINED = select(nodes.c.id, nodes.c.drain_reason, nodes.c.drained_at, nodes.c.drained_by).where(
    nodes.c.drained_at.is_not(None), nodes.c.retired.is_(False)
)


def _drain_of(row: Any) -> Drain | None:
    if row.drained_at is None:
        return None
    return Drain(row.drain_reason, int(row.drained_at), row.drained_by)


def refuse_if_draining(conn: Connection, node_pk: int, node_id: str) -> None:
    """``refuse_drained`` on the node row read now (under PostgreSQL's node lock)."""
    row = conn.execute(
        select(nodes.c.drain_reason, nodes.c.drained_at).where(nodes.c.pk == node_pk)
    ).first()
    if row is not None:
        refuse_drained(node_id, row.drained_at, row.drain_reason)


def refuse_drained(node_id: str, drained_at: int | None, reason: str | None) -> None:
    """409 ``node_draining`` when the node is drained: no new booking starts there."""
    if drained_at is None:
        return
    why = f" ({reason})" if reason else ""
    raise Conflict(
        f"Node '{node_id}' is drained for maintenance since {to_iso(int(drained_at))}{why}: "
        "no new bookings start there until an admin resumes it; book another node",
        code="node_draining",
    )


class MaintenanceStore:
    """The node rows' maintenance columns: reads for the planner and views, admin writes."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def drains(self) -> tuple[int, dict[str, Drain]]:
        """The topology version and every drained node that is not retired, read together."""
        with self.store.read() as conn:
            version = int(conn.execute(TOPOLOGY_VERSION).scalar() or 0)
            rows = conn.execute(_DRAINED).all()
        return version, {row.id: d for row in rows if (d := _drain_of(row)) is not None}

    def drain(self, node_id: str, reason: str | None, by: str | None, now: Instant) -> NodeRecord:
        """Drain the node (again: the new reason and admin replace the old, the instant and
        the notes stay those of the first drain). The owners of its active bookings that have
        not ended are told once per drain."""
        with self.store.write() as conn:
            row = _node_row(conn, node_id)
            if not self.store.is_sqlite:  # the booking writer's node lock: one or the other
                conn.execute(text("SELECT pg_advisory_xact_lock(1, :node)"), {"node": row.pk})
            if row.removed_at is not None:
                raise Conflict(
                    f"Node '{node_id}' was removed: `procplan node resume {node_id}` first",
                    code="node_removed",
                )
            since = now if row.drained_at is None else int(row.drained_at)
            values = {"drain_reason": reason, "drained_at": since, "drained_by": by}
            conn.execute(update(nodes).where(nodes.c.pk == row.pk).values(**values))
            conn.execute(BUMP_TOPOLOGY_VERSION)
            told: tuple[Booking, ...] = ()
            if row.drained_at is None:
                told = tuple(_current_and_future(conn, row.pk, now))
                for booking in told:
                    enqueue(conn, booking_node_draining(booking, reason, by, since), now)
            return NodeRecord(node_id, Drain(reason, since, by), None, told)

    def resume(self, node_id: str) -> NodeRecord:
        """Clear the drain, and the removal of a removed node (it is live again: its agent may
        register, its config entry counts again). A node with neither is left as it is."""
        with self.store.write() as conn:
            row = _node_row(conn, node_id)
            if row.drained_at is None and row.removed_at is None:
                return NodeRecord(node_id, None, None)
            values: dict[str, object] = {
                "drain_reason": None, "drained_at": None, "drained_by": None,
            }  # fmt: skip
            if row.removed_at is not None:
                values.update(removed_at=None, retired=False)
            conn.execute(update(nodes).where(nodes.c.pk == row.pk).values(**values))
            conn.execute(BUMP_TOPOLOGY_VERSION)
            return NodeRecord(node_id, None, None)

    def remove(self, node_id: str, running_jobs: Sequence[int], now: Instant) -> NodeRecord:
        """Retire the node for good (its GPUs, bookings, claims and history stay). Refused
        with ``node_in_use`` while a job runs there or a booking has not ended: drain it,
        let the jobs finish and cancel or move the bookings first."""
        with self.store.write() as conn:
            row = _node_row(conn, node_id)
            if row.removed_at is not None:
                return NodeRecord(node_id, _drain_of(row), int(row.removed_at))
            booked = [b.id for b in _current_and_future(conn, row.pk, now)]
            if running_jobs or booked:
                parts = []
                if running_jobs:
                    parts.append("jobs " + ", ".join(str(j) for j in running_jobs) + " run")
                if booked:
                    parts.append("bookings " + ", ".join(str(b) for b in booked) + " hold it")
                raise Conflict(
                    f"Node '{node_id}' is in use ({' and '.join(parts)}): drain it, let the "
                    "jobs finish and cancel the bookings before removing it",
                    code="node_in_use",
                )
            conn.execute(
                update(nodes).where(nodes.c.pk == row.pk).values(retired=True, removed_at=now)
            )
            conn.execute(BUMP_TOPOLOGY_VERSION)
            return NodeRecord(node_id, _drain_of(row), now)


def _node_row(conn: Connection, node_id: str) -> Any:
    """The node's row, with its write lock on PostgreSQL; 404 ``unknown_node`` when there
    is none, or when the configuration dropped it (retired, but not by an admin)."""
    row = conn.execute(select(*_COLUMNS).where(nodes.c.id == node_id).with_for_update()).first()
    if row is None or (row.retired and row.removed_at is None):
        raise NotFound(f"Node '{node_id}' does not exist", code="unknown_node")
    return row


def _current_and_future(conn: Connection, node_pk: int, now: Instant) -> list[Booking]:
    """The node's active bookings that have not ended at ``now``, in start order."""
    query = (
        booking_select()
        .where(bookings.c.node_pk == node_pk)
        .where(bookings.c.status == BookingStatus.ACTIVE.value)
        .where(bookings.c.end_s > now)
        .order_by(bookings.c.start_s, bookings.c.id)
    )
    return [row_to_booking(row) for row in conn.execute(query)]
