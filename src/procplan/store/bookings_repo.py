"""Bookings and their claims: the write paths (check-then-write) and the read paths.

Every write that depends on the ledger runs inside one ``Store.write()`` transaction: the
claims that could collide are read, the pure core decides, and the rows are written before
the lock is released. PostgreSQL additionally serialises writers per node with an advisory
lock and would reject an overlap through the ``claims_no_overlap`` exclusion constraint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from procplan.core.errors import Conflict, NotFound
from procplan.core.ledger import Ledger, select_free_gpus
from procplan.core.model import Booking, BookingRequest, BookingStatus, Claim, Priority
from procplan.core.timeutil import DAY, Instant
from procplan.store.engine import Store
from procplan.store.tables import GPU_ID_SEPARATOR, bookings, claims, gpus, meta, nodes, users

# Best-fit placement looks this far around the window for the neighbouring claims.
_FIT_HORIZON_S = 14 * DAY
_PRIORITIES = {int(p): p for p in Priority}
_STATUSES = {s.value: s for s in BookingStatus}

_BOOKING_COLUMNS = (
    bookings.c.id,
    nodes.c.id,
    bookings.c.gpu_ids,
    bookings.c.start_s,
    bookings.c.end_s,
    users.c.name,
    bookings.c.label,
    bookings.c.priority,
    bookings.c.status,
    bookings.c.created_at,
)


@dataclass(frozen=True, slots=True)
class BookingFilter:
    """Filters of the native list route; ``None`` means no filter on that field."""

    node_id: str | None = None
    gpu_id: str | None = None
    user: str | None = None
    status: BookingStatus | None = None
    start: Instant | None = None
    end: Instant | None = None
    limit: int = 100
    offset: int = 0


def _booking_select():  # type: ignore[no-untyped-def]
    return select(*_BOOKING_COLUMNS).join_from(bookings, nodes).join(users)


def _to_booking(row: Sequence[object]) -> Booking:
    bid, node_id, gpu_ids, start, end, user, label, priority, status, created = row
    return Booking(
        bid,  # type: ignore[arg-type]
        node_id,  # type: ignore[arg-type]
        tuple(str(gpu_ids).split(GPU_ID_SEPARATOR)),
        start,  # type: ignore[arg-type]
        end,  # type: ignore[arg-type]
        user,  # type: ignore[arg-type]
        label,  # type: ignore[arg-type]
        _PRIORITIES[priority],  # type: ignore[index]
        _STATUSES[status],  # type: ignore[index]
        created,  # type: ignore[arg-type]
    )


class BookingStore:
    """The booking side of the store: every method is one transaction."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- reads -------------------------------------------------------------------------

    def get(self, booking_id: int) -> Booking | None:
        with self.store.read() as conn:
            return _get(conn, booking_id)

    def window(
        self, node_ids: Sequence[str] | None, start: Instant, end: Instant
    ) -> list[Booking]:
        """Bookings of any status overlapping ``[start, end)``, ordered by (start, id).

        ``max_span`` (the longest booking ever written) turns the overlap test into a bounded
        range scan on ``start_s`` instead of a scan of all history.
        """
        span = select(meta.c.value).where(meta.c.key == "max_span").scalar_subquery()
        query = (
            _booking_select()
            .where(bookings.c.start_s < end)
            .where(bookings.c.start_s >= start - span)
            .where(bookings.c.end_s > start)
            .order_by(bookings.c.start_s, bookings.c.id)
        )
        if node_ids is not None:
            query = query.where(nodes.c.id.in_(list(node_ids)))
        with self.store.read() as conn:
            return [_to_booking(row) for row in conn.execute(query)]

    def list(self, flt: BookingFilter) -> tuple[list[Booking], int]:
        """A filtered page of bookings (newest start first) and the total count."""
        query = _booking_select()
        if flt.node_id is not None:
            query = query.where(nodes.c.id == flt.node_id)
        if flt.user is not None:
            query = query.where(users.c.name == flt.user)
        if flt.status is not None:
            query = query.where(bookings.c.status == flt.status.value)
        if flt.start is not None:
            query = query.where(bookings.c.end_s > flt.start)
        if flt.end is not None:
            query = query.where(bookings.c.start_s < flt.end)
        if flt.gpu_id is not None:
            query = query.where(
                bookings.c.id.in_(
                    select(claims.c.booking_id).join(gpus).where(gpus.c.id == flt.gpu_id)
                )
            )
        with self.store.read() as conn:
            total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
            page = query.order_by(bookings.c.start_s.desc(), bookings.c.id.desc())
            rows = conn.execute(page.limit(flt.limit).offset(flt.offset))
            return [_to_booking(row) for row in rows], int(total)

    def all_active_claims(self) -> list[Claim]:
        """Every active claim (the overlap audit reads this)."""
        query = select(gpus.c.id, claims.c.start_s, claims.c.end_s, claims.c.booking_id).join(
            gpus
        )
        with self.store.read() as conn:
            rows = conn.execute(query.where(claims.c.active.is_(True)))
            return [Claim(g, s, e, b) for g, s, e, b in rows]

    # ---- writes ------------------------------------------------------------------------

    def create(self, req: BookingRequest, now: Instant) -> Booking:
        """Check the ledger and insert the booking with its claims, atomically."""
        try:
            with self.store.write() as conn:
                node_pk, gpu_pks = _node_gpus(conn, req.node_id)
                _lock_node(self.store, conn, node_pk)
                chosen = _choose_gpus(conn, req, gpu_pks)
                booking_id = _insert(conn, req, node_pk, chosen, gpu_pks, now)
                return _get_required(conn, booking_id)
        except IntegrityError as exc:
            raise _overlap_conflict(exc) from exc

    def finish(self, booking_id: int, status: BookingStatus, end: Instant | None, now: Instant) -> Booking:
        """Move an active booking to ``status``; a new ``end`` truncates it (early release)."""
        with self.store.write() as conn:
            current = _get(conn, booking_id)
            if current is None or not current.is_active:
                raise NotFound(f"Booking '{booking_id}' is not active or does not exist")
            values: dict[str, object] = {"status": status.value, "updated_at": now}
            claim_values: dict[str, object] = {"active": False}
            if end is not None:
                values["end_s"] = end
                claim_values["end_s"] = end
            conn.execute(update(bookings).where(bookings.c.id == booking_id).values(**values))
            conn.execute(
                update(claims).where(claims.c.booking_id == booking_id).values(**claim_values)
            )
            return _get_required(conn, booking_id)

    def change_end(self, booking_id: int, new_end: Instant, now: Instant) -> Booking:
        """Extend or shorten an active booking; an extension is checked against the ledger."""
        try:
            with self.store.write() as conn:
                current = _get(conn, booking_id)
                if current is None or not current.is_active:
                    raise NotFound(f"Booking '{booking_id}' is not active or does not exist")
                node_pk, gpu_pks = _node_gpus(conn, current.node_id)
                _lock_node(self.store, conn, node_pk)
                if new_end > current.end:
                    _check_free(conn, current.gpu_ids, gpu_pks, current.end, new_end)
                conn.execute(
                    update(bookings)
                    .where(bookings.c.id == booking_id)
                    .values(end_s=new_end, updated_at=now)
                )
                conn.execute(
                    update(claims).where(claims.c.booking_id == booking_id).values(end_s=new_end)
                )
                _raise_max_span(conn, new_end - current.start)
                return _get_required(conn, booking_id)
        except IntegrityError as exc:
            raise _overlap_conflict(exc) from exc


def _get(conn: Connection, booking_id: int) -> Booking | None:
    row = conn.execute(_booking_select().where(bookings.c.id == booking_id)).first()
    return None if row is None else _to_booking(row)


def _get_required(conn: Connection, booking_id: int) -> Booking:
    booking = _get(conn, booking_id)
    if booking is None:  # pragma: no cover - written in this very transaction
        raise NotFound(f"Booking '{booking_id}' does not exist")
    return booking


def _node_gpus(conn: Connection, node_id: str) -> tuple[int, dict[str, int]]:
    """The node's primary key and its active GPUs (id -> pk) in configuration order."""
    node_pk = conn.execute(
        select(nodes.c.pk).where(nodes.c.id == node_id).where(nodes.c.retired.is_(False))
    ).scalar()
    if node_pk is None:
        raise NotFound(f"Unknown node id '{node_id}'", code="unknown_node")
    rows = conn.execute(
        select(gpus.c.id, gpus.c.pk)
        .where(gpus.c.node_pk == node_pk)
        .where(gpus.c.retired.is_(False))
        .order_by(gpus.c.position, gpus.c.pk)
    )
    return int(node_pk), {gpu_id: pk for gpu_id, pk in rows}


def _lock_node(store: Store, conn: Connection, node_pk: int) -> None:
    """PostgreSQL: serialise check-then-write per node (SQLite already holds the write lock)."""
    if not store.is_sqlite:
        conn.execute(text("SELECT pg_advisory_xact_lock(1, :node)"), {"node": node_pk})


def _ledger_for(
    conn: Connection, gpu_pks: dict[str, int], start: Instant, end: Instant
) -> Ledger:
    """The active claims on these GPUs overlapping ``[start, end)``."""
    by_pk = {pk: gpu_id for gpu_id, pk in gpu_pks.items()}
    rows = conn.execute(
        select(claims.c.gpu_pk, claims.c.start_s, claims.c.end_s, claims.c.booking_id)
        .where(claims.c.gpu_pk.in_(list(by_pk)))
        .where(claims.c.active.is_(True))
        .where(claims.c.start_s < end)
        .where(claims.c.end_s > start)
    )
    return Ledger(Claim(by_pk[pk], s, e, b) for pk, s, e, b in rows)


def _check_free(
    conn: Connection, gpu_ids: Sequence[str], gpu_pks: dict[str, int], start: Instant, end: Instant
) -> None:
    wanted = {gpu_id: gpu_pks[gpu_id] for gpu_id in gpu_ids if gpu_id in gpu_pks}
    ledger = _ledger_for(conn, wanted, start, end)
    for gpu_id in gpu_ids:
        if not ledger.is_free(gpu_id, start, end):
            raise Conflict(
                f"GPU '{gpu_id}' is already booked for the requested window", code="gpu_conflict"
            )


def _choose_gpus(
    conn: Connection, req: BookingRequest, gpu_pks: dict[str, int]
) -> tuple[str, ...]:
    if req.gpu_ids:
        _check_free(conn, req.gpu_ids, gpu_pks, req.start, req.end)
        return tuple(req.gpu_ids)
    count = req.gpu_count or 0
    ledger = _ledger_for(conn, gpu_pks, req.start - _FIT_HORIZON_S, req.end + _FIT_HORIZON_S)
    chosen = select_free_gpus(ledger, list(gpu_pks), req.start, req.end, count)
    if chosen is None:
        raise Conflict("Not enough GPUs available for the requested window", code="no_free_gpus")
    return chosen


def _user_pk(conn: Connection, name: str, now: Instant) -> int:
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    conn.execute(
        dialect_insert(users).values(name=name, created_at=now).on_conflict_do_nothing()
    )
    return int(conn.execute(select(users.c.pk).where(users.c.name == name)).scalar_one())


def _insert(
    conn: Connection,
    req: BookingRequest,
    node_pk: int,
    chosen: Sequence[str],
    gpu_pks: dict[str, int],
    now: Instant,
) -> int:
    booking_id = conn.execute(
        bookings.insert()
        .values(
            node_pk=node_pk,
            user_pk=_user_pk(conn, req.user, now),
            label=req.label,
            priority=int(req.priority),
            status=BookingStatus.ACTIVE.value,
            start_s=req.start,
            end_s=req.end,
            gpu_ids=GPU_ID_SEPARATOR.join(chosen),
            created_at=now,
            updated_at=now,
        )
        .returning(bookings.c.id)
    ).scalar_one()
    conn.execute(
        claims.insert(),
        [
            {
                "booking_id": booking_id,
                "gpu_pk": gpu_pks[gpu_id],
                "start_s": req.start,
                "end_s": req.end,
                "active": True,
            }
            for gpu_id in chosen
        ],
    )
    _raise_max_span(conn, req.end - req.start)
    return int(booking_id)


def _raise_max_span(conn: Connection, span: int) -> None:
    conn.execute(
        update(meta)
        .where(meta.c.key == "max_span")
        .where(meta.c.value < span)
        .values(value=span)
    )


def _overlap_conflict(exc: IntegrityError) -> Conflict:
    """The exclusion constraint fired: report it as the ordinary booking conflict."""
    return Conflict(
        "One or more GPUs are already booked for the requested window", code="gpu_conflict"
    )
