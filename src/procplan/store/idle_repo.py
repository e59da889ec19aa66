"""Idle reclaim's state in the store (ADR 0013): per booking, per tenant, and its writes.

The state is kept on the booking rows (not in one process's memory), so a restarted or a new
leader carries on where the last one stopped. A warning is written with its outbox note in
one transaction, and a release truncates the booking through the same write as ``procplan
release`` (``BookingStore._finish_in``: the ledger version moves, every mirror follows), with
its reason, its audit entry and its note in that same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from procplan.core.errors import Conflict, NotFound
from procplan.core.identity import AuditEntry
from procplan.core.idle import IdleState
from procplan.core.model import Booking, BookingStatus
from procplan.core.notes import Note
from procplan.core.timeutil import Instant
from procplan.store.bookings_repo import BookingStore
from procplan.store.engine import Store
from procplan.store.outbox import enqueue
from procplan.store.rows import booking_select, row_to_booking
from procplan.store.tables import audit, bookings, memberships, tenants, users
from procplan.store.write_batcher import WriteBatcher

__all__ = ["IdleStore"]

_STATE = select(
    bookings.c.id,
    bookings.c.idle_since,
    bookings.c.idle_warned_at,
    bookings.c.idle_keep,
    bookings.c.released_reason,
)


class IdleStore:
    """Reads and writes of the idle columns; writes join the bookings' group commit."""

    def __init__(self, store: Store, writes: WriteBatcher) -> None:
        self.store = store
        self.writes = writes

    # ---- reads -------------------------------------------------------------------------

    def states(self, booking_ids: Iterable[int]) -> dict[int, IdleState]:
        """The idle state of each booking that exists among ``booking_ids``."""
        ids = list(booking_ids)
        if not ids:
            return {}
        with self.store.read() as conn:
            rows = conn.execute(_STATE.where(bookings.c.id.in_(ids))).all()
        return {int(row[0]): _state(row) for row in rows}

    def state(self, booking_id: int) -> IdleState | None:
        return self.states([booking_id]).get(booking_id)

    def tenant_overrides(self) -> dict[str, bool]:
        """User name → the ``idle_reclaim`` override of the user's first tenant (oldest
        membership, the tenant their jobs are charged to), for users whose tenant set one."""
        query = (
            select(users.c.name, tenants.c.idle_reclaim)
            .select_from(memberships)
            .join(users, users.c.pk == memberships.c.user_pk)
            .join(tenants, tenants.c.pk == memberships.c.tenant_pk)
            .order_by(memberships.c.created_at, memberships.c.pk)
        )
        first: dict[str, bool | None] = {}
        with self.store.read() as conn:
            for name, override in conn.execute(query):
                first.setdefault(str(name), override)
        return {name: bool(value) for name, value in first.items() if value is not None}

    # ---- writes ------------------------------------------------------------------------

    def save(self, changes: Sequence[tuple[int, IdleState, Note | None]], now: Instant) -> None:
        """Write changed states, each with its warning's note when it has one, in one
        transaction. A booking its owner kept meanwhile is left alone (and gets no note)."""
        if not changes:
            return

        def work(conn: Connection) -> None:
            for booking_id, state, note in changes:
                if _write_state(conn, booking_id, state) and note is not None:
                    enqueue(conn, note, now)

        self.writes.run(work)

    def forget_all(self) -> None:
        """Reclaim is off everywhere: no booking is idle or warned any more (kept ones stay
        kept), so turning it on again starts every clock afresh."""
        idle = (bookings.c.idle_since.is_not(None)) & (
            bookings.c.status == BookingStatus.ACTIVE.value
        )
        with self.store.read() as conn:
            if conn.execute(select(bookings.c.id).where(idle).limit(1)).first() is None:
                return
        forget = update(bookings).where(idle).values(idle_since=None, idle_warned_at=None)
        self.writes.run(lambda conn: conn.execute(forget))

    def release(
        self,
        booking_id: int,
        end: Instant,
        now: Instant,
        state: IdleState,
        note: Note,
        entry: AuditEntry,
    ) -> Booking | None:
        """Truncate the booking to ``end`` (status completed, like ``procplan release``), and
        record its reason, the audit entry and the owner's note, in one transaction;
        ``None`` when its owner kept it meanwhile (``NotFound`` when it is no longer
        active)."""

        def work(conn: Connection) -> Booking | None:
            if not _write_state(conn, booking_id, state):
                return None  # kept meanwhile
            booking = BookingStore._finish_in(
                conn, booking_id, BookingStatus.COMPLETED, end, now, None
            )
            conn.execute(audit.insert(), [_audit_row(entry)])
            enqueue(conn, note, now)
            return booking

        return self.writes.run(work)

    def keep(
        self, booking_id: int, allowed: Callable[[Booking], None] | None = None
    ) -> tuple[Booking, IdleState]:
        """The owner's "keep": never reclaim this booking. ``allowed`` (the owner check)
        sees the booking in the transaction first; a booking that is not active is a 409."""

        def work(conn: Connection) -> tuple[Booking, IdleState]:
            row = conn.execute(booking_select().where(bookings.c.id == booking_id)).first()
            if row is None:
                raise NotFound(f"Booking '{booking_id}' does not exist", code="unknown_booking")
            booking = row_to_booking(row)
            if allowed is not None:
                allowed(booking)
            if not booking.is_active:
                raise Conflict(
                    f"Booking '{booking_id}' is {booking.status.value}: nothing to keep",
                    code="booking_not_active",
                )
            state = IdleState(keep=True)
            conn.execute(
                update(bookings)
                .where(bookings.c.id == booking_id)
                .values(idle_since=None, idle_warned_at=None, idle_keep=True)
            )
            return booking, state

        return self.writes.run(work)

    def set_tenant(self, tenant_id: str, enabled: bool | None) -> None:
        """A tenant's override (``None``: follow the cluster)."""

        def work(conn: Connection) -> None:
            done = conn.execute(
                update(tenants).where(tenants.c.id == tenant_id).values(idle_reclaim=enabled)
            )
            if done.rowcount == 0:
                raise NotFound(f"Tenant '{tenant_id}' does not exist", code="unknown_tenant")

        self.writes.run(work)


def _state(row: Sequence[Any]) -> IdleState:
    _id, since, warned, keep, reason = row
    return IdleState(
        since=None if since is None else int(since),
        warned_at=None if warned is None else int(warned),
        keep=bool(keep),
        released_reason=None if reason is None else str(reason),
    )


def _write_state(conn: Connection, booking_id: int, state: IdleState) -> bool:
    """Write the leader's state unless the owner kept the booking (only ``keep`` sets
    ``idle_keep``, and nothing unsets it); whether it was written."""
    done = conn.execute(
        update(bookings)
        .where(bookings.c.id == booking_id)
        .where(bookings.c.idle_keep.is_(False))
        .values(
            idle_since=state.since,
            idle_warned_at=state.warned_at,
            released_reason=state.released_reason,
        )
    )
    return bool(done.rowcount)


def _audit_row(entry: AuditEntry) -> dict[str, object]:
    return {
        "at": entry.at, "actor": entry.actor, "action": entry.action,
        "target": entry.target[:256], "owner": entry.owner, "as_admin": entry.as_admin,
        "via": entry.via, "detail": entry.detail,
    }  # fmt: skip
