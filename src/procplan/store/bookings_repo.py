"""Bookings and their claims: the write paths (check-then-write) and the read paths.

Every write that depends on the ledger runs inside one ``Store.write()`` transaction: the
claims that could collide are read, the pure core decides, and the rows are written before
the lock is released. PostgreSQL additionally serialises writers per node with an advisory
lock and would reject an overlap through the ``claims_no_overlap`` exclusion constraint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError

from procplan.core.errors import Conflict, NotFound
from procplan.core.ledger import (
    Ask,
    Holder,
    Ledger,
    Preempted,
    judge,
    preempted_jobs,
    select_free_gpus,
)
from procplan.core.ledger.refusals import NO_FREE_GPUS
from procplan.core.model import (
    Booking,
    BookingRequest,
    BookingStatus,
    Claim,
    Gpu,
    Node,
)
from procplan.core.text import name_problem
from procplan.core.timeutil import DAY, Instant
from procplan.store import fast_sql
from procplan.store.engine import Store
from procplan.store.ledger_holds import check_booking, read_holds, refusal
from procplan.store.ledger_mirror import BookingMirror
from procplan.store.maintenance_repo import refuse_drained, refuse_if_draining
from procplan.store.rows import booking_select, row_to_booking
from procplan.store.tables import bookings, claims, gpus, meta, nodes, users
from procplan.store.users_repo import user_pk as _user_pk
from procplan.store.write_batcher import WriteBatcher

# Best-fit placement looks this far around the window for the neighbouring claims: enough to
# pack bookings tightly within a day, without reading weeks of claims on every booking.
_FIT_HORIZON_S = DAY


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


# Statements of the write path, built once: constructing SQLAlchemy expressions per call cost
# more than executing them.
_GET_BOOKING = booking_select().where(bookings.c.id == bindparam("booking_id"))
_NODE_GPUS = (
    select(nodes.c.pk, gpus.c.id, gpus.c.pk, nodes.c.drained_at, nodes.c.drain_reason)
    .select_from(nodes)
    .outerjoin(gpus, (gpus.c.node_pk == nodes.c.pk) & gpus.c.retired.is_(False))
    .where(nodes.c.id == bindparam("node_id"))
    .where(nodes.c.retired.is_(False))
    .order_by(gpus.c.position, gpus.c.pk)
)
_INSERT_BOOKING = bookings.insert().returning(bookings.c.id)
_INSERT_CLAIM = claims.insert()
_FINISH_BOOKING = (
    update(bookings)
    .where(bookings.c.id == bindparam("b_id"))
    .values(
        status=bindparam("new_status"),
        end_s=bindparam("new_end"),
        updated_at=bindparam("now"),
        version=bindparam("new_version"),
    )
)
_FINISH_CLAIMS = (
    update(claims)
    .where(claims.c.booking_id == bindparam("b_id"))
    .values(active=False, end_s=bindparam("new_end"))
)
_NEXT_LEDGER_VERSION = (
    update(meta)
    .where(meta.c.key == "ledger_version")
    .values(value=meta.c.value + 1)
    .returning(meta.c.value)
)


class Series(NamedTuple):
    """A series' outcome: its bookings (ids 0 when nothing was written), the jobs they will
    preempt (with the index of the booking that preempts each), and the refused occurrences
    with their refusals (then nothing is written)."""

    bookings: list[Booking]
    preempted: list[tuple[int, Preempted]]
    refused: list[tuple[BookingRequest, Conflict]]


class BookingStore:
    """The booking side of the store. Reads are one transaction each (or the mirror);
    writes go through the group-commit ``WriteBatcher``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.mirror = BookingMirror(store)
        self.writes = WriteBatcher(store)
        self._user_pks: dict[str, int] = {}

    # ---- reads -------------------------------------------------------------------------

    def preview(
        self, req: BookingRequest, now: Instant, check: Callable[[Node | None], None]
    ) -> tuple[tuple[str, ...], list[Preempted]]:
        """What ``create`` would do, without writing: the GPUs it would take and the jobs it
        would preempt (rule 4), or the ``Conflict`` it would raise. A read: another writer may
        change the answer before the caller books."""
        with self.store.read() as conn:
            found = _find_node_gpus(conn, req.node_id)
            check(None if found is None else as_node(req.node_id, found.gpu_pks))
            if found is None:  # pragma: no cover - check() rejects unknown nodes
                raise NotFound(f"Unknown node id '{req.node_id}'", code="unknown_node")
            found.refuse_if_drained(req.node_id)
            return _choose_gpus(conn, req, found.gpu_pks)

    def get(self, booking_id: int) -> Booking | None:
        with self.store.read() as conn:
            return get_booking(conn, booking_id)

    def window(self, node_ids: Sequence[str] | None, start: Instant, end: Instant) -> list[Booking]:
        """Bookings of any status overlapping ``[start, end)``: grouped by node, each node's
        in (start, id) order. Served from the in-memory mirror, synced to the last commit
        first (see ``ledger_mirror``)."""
        return self.mirror.window(node_ids, start, end)

    def page(self, flt: BookingFilter) -> tuple[list[Booking], int]:
        """A filtered page of bookings (newest start first) and the total count."""
        query = booking_select()
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
            return [row_to_booking(row) for row in rows], int(total)

    def all_active_claims(self) -> list[Claim]:
        """Every active booking claim (the overlap audit of rule 1 reads this)."""
        query = select(gpus.c.id, claims.c.start_s, claims.c.end_s, claims.c.booking_id).join(gpus)
        query = query.where(claims.c.active.is_(True)).where(claims.c.booking_id.is_not(None))
        with self.store.read() as conn:
            return [Claim(g, s, e, b) for g, s, e, b in conn.execute(query)]

    # ---- writes ------------------------------------------------------------------------

    def create(
        self, req: BookingRequest, now: Instant, check: Callable[[Node | None], None]
    ) -> tuple[Booking, list[Preempted]]:
        """Validate against the node as stored, check the ledger and insert, atomically; the
        booking and the jobs it will preempt (rule 4, from the same check).

        ``check`` is the caller's validation (the pure core's ``validate_request``), run on
        the node read in this very transaction so that a concurrent topology change cannot
        slip between the validation and the write.
        """
        return self.submit_create(req, now, check).result()

    def submit_create(
        self, req: BookingRequest, now: Instant, check: Callable[[Node | None], None]
    ) -> Future[tuple[Booking, list[Preempted]]]:
        """``create`` without waiting for it: the future resolves once committed (for a
        caller on an event loop, which awaits it without a thread of its own)."""

        def work(conn: Connection) -> tuple[Booking, list[Preempted]]:
            found = _find_node_gpus(conn, req.node_id)
            check(None if found is None else as_node(req.node_id, found.gpu_pks))
            if found is None:  # pragma: no cover - check() rejects unknown nodes
                raise NotFound(f"Unknown node id '{req.node_id}'", code="unknown_node")
            node_pk, gpu_pks = found.pk, found.gpu_pks
            lock_node(self.store, conn, found, req.node_id)
            chosen, preempted = _choose_gpus(conn, req, gpu_pks)
            try:
                booking_id = _insert(conn, req, node_pk, chosen, gpu_pks, now, self._user_pks)
            except IntegrityError as exc:
                raise overlap_conflict(exc) from exc
            booking = Booking(
                booking_id, req.node_id, tuple(chosen), req.start, req.end, req.user, req.label,
                req.priority, BookingStatus.ACTIVE, now,
            )  # fmt: skip
            return booking, preempted

        return self.writes.submit(work)

    def create_series(
        self,
        reqs: Sequence[BookingRequest],
        now: Instant,
        check: Callable[[BookingRequest, Node | None], None],
        *,
        write: bool,
    ) -> Series:
        """A weekly series (issue #17): every request checked against the ledger in one
        transaction; written all together only when ``write`` and none is refused. The
        requests are of one node and never overlap each other in time."""
        node_id = reqs[0].node_id

        def work(conn: Connection) -> Series:
            found = _find_node_gpus(conn, node_id)
            for req in reqs:
                check(req, None if found is None else as_node(node_id, found.gpu_pks))
            if found is None:  # pragma: no cover - check() rejects unknown nodes
                raise NotFound(f"Unknown node id '{node_id}'", code="unknown_node")
            node_pk, gpu_pks = found.pk, found.gpu_pks
            if write:
                lock_node(self.store, conn, found, node_id)
            else:
                found.refuse_if_drained(node_id)
            plans: list[tuple[BookingRequest, tuple[str, ...]]] = []
            preempted: list[tuple[int, Preempted]] = []
            refused: list[tuple[BookingRequest, Conflict]] = []
            for req in reqs:
                try:
                    chosen, jobs = _choose_gpus(conn, req, gpu_pks)
                except Conflict as exc:
                    refused.append((req, exc))
                    continue
                preempted.extend((len(plans), job) for job in jobs)
                plans.append((req, chosen))
            if refused or not write:
                ids = [0] * len(plans)
            else:
                ids = [_insert(conn, r, node_pk, c, gpu_pks, now, self._user_pks) for r, c in plans]
            made = [
                Booking(i, r.node_id, c, r.start, r.end, r.user, r.label, r.priority,
                        BookingStatus.ACTIVE, now)
                for i, (r, c) in zip(ids, plans, strict=True)
            ]  # fmt: skip
            return Series(made, preempted, refused)

        if not write:
            with self.store.read() as conn:
                return work(conn)
        try:
            return self.writes.run(work)
        except IntegrityError as exc:
            raise overlap_conflict(exc) from exc

    def finish(
        self,
        booking_id: int,
        status: BookingStatus,
        end: Instant | None,
        now: Instant,
        allowed: Callable[[Booking], None] | None = None,
    ) -> Booking:
        """Move an active booking to ``status``; a new ``end`` truncates it (early release).
        ``allowed`` sees the booking first, in the transaction, and may refuse by raising."""
        return self.submit_finish(booking_id, status, end, now, allowed).result()

    def submit_finish(
        self,
        booking_id: int,
        status: BookingStatus,
        end: Instant | None,
        now: Instant,
        allowed: Callable[[Booking], None] | None = None,
    ) -> Future[Booking]:
        """``finish`` without waiting for it (see ``submit_create``)."""
        return self.writes.submit(
            lambda conn: self._finish_in(conn, booking_id, status, end, now, allowed)
        )

    @staticmethod
    def _finish_in(
        conn: Connection,
        booking_id: int,
        status: BookingStatus,
        end: Instant | None,
        now: Instant,
        allowed: Callable[[Booking], None] | None,
    ) -> Booking:
        current = get_booking(conn, booking_id)
        if current is None or not current.is_active:
            raise NotFound(f"Booking '{booking_id}' is not active or does not exist")
        if allowed is not None:
            allowed(current)
        new_end = current.end if end is None else end
        fast_sql.execute(
            conn,
            _FINISH_BOOKING,
            {
                "b_id": booking_id,
                "new_status": status.value,
                "new_end": new_end,
                "now": now,
                "new_version": next_ledger_version(conn),
            },
        )
        fast_sql.execute(conn, _FINISH_CLAIMS, {"b_id": booking_id, "new_end": new_end})
        return current._replace(status=status, end=new_end)


def get_booking(conn: Connection, booking_id: int) -> Booking | None:
    found = fast_sql.rows(conn, _GET_BOOKING, {"booking_id": booking_id})
    row = found[0] if found else None
    return None if row is None else row_to_booking(row)


class NodeGpus(NamedTuple):
    """A node as the booking writer reads it, in one query: its primary key, its active GPUs
    (id -> pk) in configuration order, and its drain (ADR 0020)."""

    pk: int
    gpu_pks: dict[str, int]
    drained_at: int | None
    drain_reason: str | None

    def refuse_if_drained(self, node_id: str) -> None:
        refuse_drained(node_id, self.drained_at, self.drain_reason)


def _find_node_gpus(conn: Connection, node_id: str) -> NodeGpus | None:
    if name_problem(node_id) is not None:
        return None  # no node has such an id, and PostgreSQL refuses some (NUL) in a query
    rows = fast_sql.rows(conn, _NODE_GPUS, {"node_id": node_id})
    if not rows:
        return None
    first = rows[0]
    gpu_pks = {row[1]: row[2] for row in rows if row[1] is not None}
    return NodeGpus(int(first[0]), gpu_pks, first[3], first[4])


def node_gpus(conn: Connection, node_id: str) -> NodeGpus:
    found = _find_node_gpus(conn, node_id)
    if found is None:
        raise NotFound(f"Unknown node id '{node_id}'", code="unknown_node")
    return found


def as_node(node_id: str, gpu_pks: dict[str, int]) -> Node:
    """The node as far as booking validation needs it: its id and GPU ids, in order."""
    return Node(node_id, node_id, tuple(Gpu(gpu_id, index=i) for i, gpu_id in enumerate(gpu_pks)))


def lock_node(
    store: Store, conn: Connection, node: NodeGpus, refuse_drained_as: str | None = None
) -> None:
    """PostgreSQL: serialise check-then-write per node (SQLite already holds the write lock).
    With ``refuse_drained_as`` (the node id), a new booking: refuse a drained node (ADR 0020),
    on PostgreSQL as read again under the lock (a drain may have committed while this waited),
    on SQLite as ``node`` was read, already under the write lock."""
    if store.is_sqlite:
        if refuse_drained_as is not None:
            node.refuse_if_drained(refuse_drained_as)
        return
    conn.execute(text("SELECT pg_advisory_xact_lock(1, :node)"), {"node": node.pk})
    if refuse_drained_as is not None:
        refuse_if_draining(conn, node.pk, refuse_drained_as)


def _choose_gpus(
    conn: Connection, req: BookingRequest, gpu_pks: dict[str, int]
) -> tuple[tuple[str, ...], list[Preempted]]:
    """The GPUs the booking takes and the jobs it will preempt (rule 4), from one read of
    the holds. Explicit GPUs must take the booking (``check_booking``); a count picks, among
    the GPUs that would, the best fit against the neighbouring bookings
    (``select_free_gpus``)."""
    ask = Ask.booking(req.user, req.start, req.end)
    if req.gpu_ids:
        return tuple(req.gpu_ids), check_booking(conn, gpu_pks, req.gpu_ids, ask)
    holds = read_holds(conn, gpu_pks, req.start - _FIT_HORIZON_S, req.end + _FIT_HORIZON_S)
    verdicts = {gpu_id: judge(ask, gpu_holds) for gpu_id, gpu_holds in holds.items()}
    booked = Ledger(
        Claim(h.gpu_id, h.start, h.end, h.holder_id)
        for gpu_holds in holds.values()
        for h in gpu_holds
        if h.holder is Holder.BOOKING
    )
    candidates = [gpu_id for gpu_id in gpu_pks if verdicts[gpu_id].ok]
    chosen = select_free_gpus(booked, candidates, req.start, req.end, req.gpu_count or 0)
    if chosen is None:
        raise refusal(
            conn,
            gpu_pks,
            list(gpu_pks),
            ask,
            NO_FREE_GPUS,
            "no_free_gpus",
            [h for v in verdicts.values() for h in v.blocking],
            req.gpu_count or 0,
        )
    return chosen, preempted_jobs(verdicts[gpu_id] for gpu_id in chosen)


def _insert(
    conn: Connection,
    req: BookingRequest,
    node_pk: int,
    chosen: Sequence[str],
    gpu_pks: dict[str, int],
    now: Instant,
    known_users: dict[str, int],
) -> int:
    booking_id = fast_sql.scalar(
        conn,
        _INSERT_BOOKING,
        {
            "node_pk": node_pk,
            "user_pk": _user_pk(conn, req.user, now, known_users),
            "label": req.label,
            "priority": int(req.priority),
            "status": BookingStatus.ACTIVE.value,
            "start_s": req.start,
            "end_s": req.end,
            "created_at": now,
            "updated_at": now,
            "version": next_ledger_version(conn),
        },
    )
    fast_sql.execute_many(
        conn,
        _INSERT_CLAIM,
        [
            {
                "booking_id": booking_id,
                "gpu_pk": gpu_pks[gpu_id],
                "start_s": req.start,
                "end_s": req.end,
                "active": True,
                "position": position,
            }
            for position, gpu_id in enumerate(chosen)
        ],
    )
    return int(booking_id)


def next_ledger_version(conn: Connection) -> int:
    """Bump ``ledger_version`` for this write transaction and return the new value.

    The UPDATE locks the meta row until commit, so versions become visible in commit order
    (PostgreSQL's concurrent writers queue here; SQLite has one writer anyway): a reader that
    has seen version N has seen every change up to N.
    """
    return int(fast_sql.scalar(conn, _NEXT_LEDGER_VERSION))


def overlap_conflict(exc: IntegrityError) -> Exception:
    """The exclusion constraint fired: report it as the ordinary booking conflict.

    Any other integrity error is a bug, not a conflict, and is passed on unchanged.
    """
    if "claims_no_overlap" not in str(exc.orig):
        return exc
    return Conflict(
        "One or more GPUs are already booked for the requested window", code="gpu_conflict"
    )
