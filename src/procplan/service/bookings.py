"""Booking use cases: validate with the pure core, then one store transaction each.

Compat (ProcPlan) callers pass ``whole_hours=True``: their API only knows whole hours and
expects 400s; native callers get minute precision and 409 for ledger conflicts. Every committed
booking write publishes ``LEDGER_CHANGED`` (a topology swap ``NODES_CHANGED``) on the event bus.
"""

from __future__ import annotations

import asyncio
import builtins
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import replace

from procplan.core import view_size
from procplan.core.booking_edit import BookingEdit, edited_request, validate_edit
from procplan.core.bookings import (
    BookingLimits,
    check_started,
    validate_request,
    validate_window,
    weekly_occurrences,
)
from procplan.core.calendar import group_by_node
from procplan.core.errors import InvalidRequest, NotFound, check_answer_size
from procplan.core.ledger import Preempted, Preview
from procplan.core.model import Booking, BookingRequest, BookingStatus, Node, Topology
from procplan.core.timeutil import DAY, HOUR, MINUTE, Instant, ceil_to, floor_to
from procplan.core.views import Availability, Granularity, LedgerWindow
from procplan.service.clock import Clock
from procplan.service.events import Event, EventBus
from procplan.store.booking_edit import Edited, edit_booking
from procplan.store.bookings_repo import BookingFilter, BookingStore, Series
from procplan.store.engine import Store
from procplan.store.ledger_mirror import BookingMirror
from procplan.store.topology_repo import (
    TOPOLOGY_VERSION,
    load_topology,
    sync_topology,
    topology_version,
)

GRANULARITIES: dict[str, Granularity] = {"hour": "hour", "day": "day"}


def parse_granularity(value: str | None) -> Granularity:
    """ProcPlan's ``granularity`` parameter: ``hour`` (default) or ``day``, any case."""
    key = GRANULARITIES.get((value or "hour").strip().lower())
    if key is None:
        raise InvalidRequest("Granularity must be either 'hour' or 'day'")
    return key


class TopologyCache:
    """The topology as of the database's ``topology_version``: one tiny query per use.

    Several server processes may share a database; each sees another's reload on its next
    request because the version check reads the committed counter.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._version = -1
        self._topology = Topology(())
        self._checked_at = float("-inf")

    def current(self) -> Topology:
        if self._store.peek(TOPOLOGY_VERSION) == self._version:
            self._checked_at = time.monotonic()
            return self._topology
        with self._store.read() as conn:
            version = topology_version(conn)
            topology = load_topology(conn)
        with self._lock:
            self._version, self._topology = version, topology
            self._checked_at = time.monotonic()
        return topology

    @property
    def version(self) -> int:
        """The ``topology_version`` of the topology last loaded."""
        return self._version

    def recent(self, max_age_s: float = 1.0) -> Topology:
        """The topology as checked at most ``max_age_s`` ago: for job submissions, whose
        sizes are validated again against the current topology by every cycle."""
        if time.monotonic() - self._checked_at <= max_age_s:
            return self._topology
        return self.current()


class SizeMemo:
    """Answer-size estimates by ledger version, view, window and nodes. Clients poll the same
    windows, and an estimate (a pass over the window's bookings) changes only with the ledger;
    the views themselves are always computed afresh. Bounded: cleared when full."""

    CAP = 256

    def __init__(self) -> None:
        self._sizes: dict[Hashable, int] = {}

    def get(self, key: Hashable, compute: Callable[[], int]) -> int:
        size = self._sizes.get(key)
        if size is None:
            if len(self._sizes) >= self.CAP:
                self._sizes.clear()
            size = self._sizes[key] = compute()
        return size


def released_end(current: Booking, now: Instant, *, whole_hours: bool = False) -> Instant:
    """The end of a booking released at ``now`` (rule 5): rounded up to the next minute (hour
    for ProcPlan clients), never outside ``[start, end]``. Idle reclaim uses it too."""
    truncated = ceil_to(now, HOUR if whole_hours else MINUTE)
    return min(current.end, max(current.start, truncated))


# The caller's check on the booking it is about to change (an owner check): raises to refuse.
Allowed = Callable[[Booking], None]


class BookingService:
    """Everything the APIs do with bookings and availability."""

    def __init__(
        self, store: Store, clock: Clock, limits: BookingLimits, events: EventBus | None = None
    ) -> None:
        self.store = store
        self.bookings = BookingStore(store)
        self.clock = clock
        self.limits = limits
        self.topology_cache = TopologyCache(store)
        self._sizes = SizeMemo()
        # Told after every committed booking or topology change: the scheduling cycle
        # listens, because bookings decide where jobs may run.
        self.events = events if events is not None else EventBus()

    def _changed(self, event: Event = Event.LEDGER_CHANGED) -> None:
        self.events.publish(event)

    def ledger_version(self) -> int:
        """The committed ``ledger_version`` (one indexed read): it moves on every committed
        booking write, from any process sharing the database."""
        return self.mirror.committed_version()

    @property
    def mirror(self) -> BookingMirror:
        """This process's in-memory ledger (``store.ledger_mirror``): the job store shares
        it, since one per process is enough."""
        return self.bookings.mirror

    def warm_up(self) -> None:
        """Load the topology and the in-memory ledger now rather than on the first request
        (and before ``tune_gc`` freezes start-up objects out of the collector's scans)."""
        self.topology()
        self.mirror.sync()

    # ---- topology ----------------------------------------------------------------------

    def topology(self) -> Topology:
        return self.topology_cache.current()

    def recent_topology(self, max_age_s: float = 1.0) -> Topology:
        """The topology as checked at most ``max_age_s`` ago (see ``TopologyCache.recent``)."""
        return self.topology_cache.recent(max_age_s)

    def node(self, node_id: str) -> Node:
        node = self.topology().node(node_id)
        if node is None:
            raise InvalidRequest(f"Unknown node id '{node_id}'", code="unknown_node")
        return node

    def replace_topology(self, topology: Topology) -> None:
        """Swap the whole topology in one transaction (validated before we get here)."""
        with self.store.write() as conn:
            sync_topology(conn, topology, self.clock.now())
        self._changed(Event.NODES_CHANGED)

    # ---- views -------------------------------------------------------------------------

    def default_window(self) -> tuple[Instant, Instant]:
        """ProcPlan's default: today 00:00 UTC for 24 h; tomorrow once past 20:00 UTC."""
        now = self.clock.now()
        day_start = now - now % (24 * HOUR)
        if now - day_start >= 20 * HOUR:
            day_start += 24 * HOUR
        return day_start, day_start + 24 * HOUR

    def availability(
        self, node_id: str, start: Instant, end: Instant, granularity: str | None
    ) -> Availability:
        """One node's ProcPlan grid, from the committed ledger (never cached)."""
        return self.availability_many([node_id], start, end, granularity)

    def availability_many(
        self, node_ids: Sequence[str], start: Instant, end: Instant, granularity: str | None
    ) -> Availability:
        """Several nodes' grids, each node once (in the order first asked for). Refused before
        anything is built when the answer would pass ``max_answer_bytes``."""
        validate_window(start, end, self.limits, whole_hours=True)
        key = parse_granularity(granularity)
        nodes = tuple(self.node(node_id) for node_id in dict.fromkeys(node_ids))
        rows = tuple(self.bookings.window([n.id for n in nodes], start, end))
        size = view_size.day_view_bytes if key == "day" else view_size.hour_view_bytes

        def estimate() -> int:
            by_node = group_by_node(nodes, rows)
            return sum(size(node, start, end, by_node[node.id]) for node in nodes)

        check_answer_size(
            self._sizes.get(self._size_key(key, start, end, nodes), estimate),
            self.limits.max_answer_bytes,
            "ask for fewer nodes, a shorter window or granularity=day",
        )
        return Availability(LedgerWindow(start, end, nodes, rows), key)

    def _size_key(self, view: str, start: Instant, end: Instant, nodes: Sequence[Node]) -> Hashable:
        """What an answer-size estimate depends on: the ledger and topology versions, the
        view, the window and the node ids (hashing the nodes themselves cost 0.2 ms for 300)."""
        versions = (self.mirror.version, self.topology_cache.version)
        return (*versions, view, start, end, tuple(node.id for node in nodes))

    def calendar(
        self, start: Instant, end: Instant, node_ids: Sequence[str] | None
    ) -> LedgerWindow:
        """The native compact calendar's window (``node_ids``: ``None`` for every node)."""
        validate_window(start, end, self.limits, whole_hours=False)
        topology = self.topology()
        nodes = (
            tuple(topology.nodes)
            if node_ids is None
            else tuple(self.node(n) for n in dict.fromkeys(node_ids))
        )
        rows = tuple(self.bookings.window([n.id for n in nodes], start, end))
        check_answer_size(
            self._sizes.get(
                self._size_key("claims", start, end, nodes),
                lambda: view_size.claim_rows_bytes(nodes, start, end, rows),
            ),
            self.limits.max_answer_bytes,
            "ask for fewer nodes or a shorter window",
        )
        return LedgerWindow(start, end, nodes, rows)

    # ---- bookings ----------------------------------------------------------------------

    def get(self, booking_id: int) -> Booking:
        booking = self.bookings.get(booking_id)
        if booking is None:
            raise NotFound(f"Booking '{booking_id}' does not exist", code="unknown_booking")
        return booking

    def find(self, booking_id: int) -> Booking | None:
        """The booking, active or not; ``None`` when there is none."""
        return self.bookings.get(booking_id)

    def active_at(self, node_ids: Sequence[str] | None, at: Instant) -> builtins.list[Booking]:
        """The active bookings of these nodes (``None``: all) that hold ``at``."""
        return [b for b in self.bookings.window(node_ids, at, at + 1) if b.is_active]

    def near(self, start: Instant, end: Instant) -> builtins.list[Booking]:
        """Every booking that overlaps ``[start, end)`` (the notification sender's scan)."""
        return self.bookings.window(None, start, end)

    def list(self, flt: BookingFilter) -> tuple[list[Booking], int]:
        return self.bookings.page(flt)

    def create(self, req: BookingRequest, *, whole_hours: bool) -> Booking:
        """Validate (inside the write transaction, against the stored node) and book."""
        return self.book(req, whole_hours=whole_hours)[0]

    def book(
        self, req: BookingRequest, *, whole_hours: bool
    ) -> tuple[Booking, builtins.list[Preempted]]:
        """``create``, with the open-ended jobs of others the booking will preempt when it
        begins (rule 4), found by the same check in the same transaction."""
        booked = self._submit_create(req, whole_hours).result()
        self._changed()
        return booked

    async def create_async(self, req: BookingRequest, *, whole_hours: bool) -> Booking:
        """``create`` for a caller on the event loop: the write is queued to the writer and
        awaited there, with no thread-pool hop (issue #18)."""
        booking, _ = await asyncio.wrap_future(self._submit_create(req, whole_hours))
        self._changed()
        return booking

    def _submit_create(
        self, req: BookingRequest, whole_hours: bool
    ) -> Future[tuple[Booking, builtins.list[Preempted]]]:
        now = self.clock.now()
        return self.bookings.submit_create(req, now, self._validation(req, now, whole_hours))

    def book_weekly(self, req: BookingRequest, until: Instant, *, write: bool) -> Series:
        """A weekly series (issue #17): ``req`` and its copies a week, two weeks ... later,
        through the UTC day of ``until`` (at most ``MAX_OCCURRENCES``). Every occurrence is
        validated and checked in one transaction; written all or nothing (``write``), and
        only when none is refused (``Series.refused`` lists those that are)."""
        now = self.clock.now()
        last = floor_to(until, DAY) + DAY - 1
        reqs = [
            replace(req, start=s, end=e) for s, e in weekly_occurrences(req.start, req.end, last)
        ]

        def check(one: BookingRequest, node: Node | None) -> None:
            validate_request(one, node, now, self.limits, whole_hours=False)

        series = self.bookings.create_series(reqs, now, check, write=write)
        if write and not series.refused:
            self._changed()
        return series

    def preview(self, req: BookingRequest, *, whole_hours: bool) -> Preview:
        """What ``book`` would do now (same validation, same GPU choice, same refusals),
        without writing anything: the client shows it before the user books."""
        now = self.clock.now()
        check = self._validation(req, now, whole_hours)
        gpu_ids, preempted = self.bookings.preview(req, now, check)
        return Preview(req.node_id, gpu_ids, req.start, req.end, req.user, tuple(preempted))

    def _validation(
        self, req: BookingRequest, now: Instant, whole_hours: bool
    ) -> Callable[[Node | None], None]:
        """The core's request validation, run by the store on the node it read in the
        transaction."""

        def check(node: Node | None) -> None:
            validate_request(req, node, now, self.limits, whole_hours=whole_hours)

        return check

    def release(
        self,
        booking_id: int,
        *,
        whole_hours: bool,
        allowed: Allowed | None = None,
        refuse_unstarted: bool = False,
    ) -> Booking:
        """Early release: status completed, end truncated to now (rule 5 of the ledger).

        The end is rounded up to the next minute (next hour for ProcPlan clients, whose grid
        only knows hours) and never moves outside ``[start, end]``: the past stays history.
        ``refuse_unstarted`` (the native API): a booking that has not begun is refused with
        409 ``not_started`` (cancel it instead); ProcPlan's ``mark_done`` keeps completing it.
        """
        now = self.clock.now()
        current = self.get_active(booking_id)
        if allowed is not None:
            allowed(current)
        if refuse_unstarted:
            check_started(current, now)
        end = released_end(current, now, whole_hours=whole_hours)
        booking = self.bookings.finish(booking_id, BookingStatus.COMPLETED, end, now)
        self._changed()
        return booking

    def cancel(self, booking_id: int, allowed: Allowed | None = None) -> Booking:
        """Deactivate the booking's claims; ``allowed`` (the caller's owner check) sees the
        booking inside the write transaction, before anything changes."""
        booking = self._submit_cancel(booking_id, allowed).result()
        self._changed()
        return booking

    async def cancel_async(self, booking_id: int, allowed: Allowed | None = None) -> Booking:
        """``cancel`` for a caller on the event loop (see ``create_async``)."""
        booking = await asyncio.wrap_future(self._submit_cancel(booking_id, allowed))
        self._changed()
        return booking

    def _submit_cancel(self, booking_id: int, allowed: Allowed | None) -> Future[Booking]:
        now = self.clock.now()
        return self.bookings.submit_finish(booking_id, BookingStatus.CANCELLED, None, now, allowed)

    def change_end(
        self, booking_id: int, new_end: Instant, allowed: Allowed | None = None
    ) -> Booking:
        """Extend or shorten: an ``edit`` of the end alone."""
        return self.edit(booking_id, BookingEdit(end=new_end), allowed).booking

    def edit(self, booking_id: int, edit: BookingEdit, allowed: Allowed | None = None) -> Edited:
        """Move, resize, regroup, relabel or reprioritise an active booking (ADR 0024): the
        result must be a valid booking of its node (``validate_edit``, on the node read in
        the write transaction), and only the claims it adds are checked against the ledger."""
        now = self.clock.now()

        def plan(current: Booking, node: Node) -> BookingRequest:
            req = edited_request(current, edit)
            validate_edit(current, req, node, now, self.limits)
            return req

        edited = edit_booking(self.bookings, booking_id, now, plan, allowed)
        self._changed()
        return edited

    def get_active(self, booking_id: int) -> Booking:
        booking = self.bookings.get(booking_id)
        if booking is None or not booking.is_active:
            raise NotFound(f"Booking '{booking_id}' is not active or does not exist")
        return booking
