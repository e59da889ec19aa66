"""The planner's working view of the cluster over time, built once per cycle.

One cycle asks thousands of "which GPUs could this job use at ``t``?" questions, so the view
is laid out for that question: GPUs and nodes are numbered, and per GPU it keeps

- ``busy``: the instant the GPU is free from (``now`` when free; a running job's claim end;
  ``OPEN_END`` when it never frees as far as the planner knows: held open-ended, a foreign
  process on it, its node down);
- ``bookings``: its active bookings still ahead, by start (``Span``);
- ``reservations``: intervals this cycle promised to blocked higher-priority jobs (backfill);
- ``floor``: ``busy`` pushed past any reservation covering it, a lower bound on when any job
  could start there, which the estimate search sorts nodes by.

Per node it keeps how many GPUs are free now, and nodes are bucketed by that count so best-fit
placement looks at the fullest nodes first and stops at the first fit. Every change appends
the node to ``log``, from which per-shape caches (``core.placement``) catch up incrementally.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter

from procplan.core.jobs import OPEN_END, NodeState
from procplan.core.ledger.rules import Want
from procplan.core.model import Booking, BookingStatus, Topology
from procplan.core.timeutil import Instant

__all__ = ["Cluster", "Layout", "Span", "layout_of"]


# A booking as one of its GPUs sees it (the Booking itself: no copy per GPU).
Span = Booking
_start_of = attrgetter("start")


def _foreign(spans: Sequence[Span], start: Instant, end: Instant, want: Want) -> bool:
    """Does a booking that is not the job's own overlap ``[start, end)``?"""
    for span in spans:
        if span.start >= end:
            return False
        if span.end > start and want.foreign(span.user, span.id):
            return True
    return False


def _overlaps(intervals: Sequence[tuple[Instant, Instant]], start: Instant, end: Instant) -> bool:
    for lo, hi in intervals:
        if lo >= end:
            return False
        if hi > start:
            return True
    return False


class Layout:
    """A topology numbered for the planner: nodes in config order, GPUs in PCI order within
    a node. Read-only; ``layout_of`` shares it between passes over the same ``Topology``."""

    __slots__ = (
        "filters",
        "gpu_ids",
        "gpu_kind",
        "gpu_memory",
        "gpu_node",
        "index",
        "node_gpus",
        "node_ids",
    )

    def __init__(self, topology: Topology) -> None:
        self.node_ids: tuple[str, ...] = tuple(node.id for node in topology.nodes)
        gpu_ids: list[str] = []
        gpu_node: list[int] = []
        kinds: list[str] = []
        memory: list[int | None] = []
        node_gpus: list[tuple[int, ...]] = []
        index: dict[str, int] = {}
        for n, node in enumerate(topology.nodes):
            ids: list[int] = []
            for _, gpu in sorted(enumerate(node.gpus), key=lambda item: (item[1].index, item[0])):
                if gpu.id in index:
                    continue  # duplicate id: the topology parser refuses these; be safe
                index[gpu.id] = len(gpu_ids)
                ids.append(len(gpu_ids))
                gpu_ids.append(gpu.id)
                gpu_node.append(n)
                kinds.append(gpu.kind.lower())
                memory.append(gpu.memory_mb)
            node_gpus.append(tuple(ids))
        self.gpu_ids, self.gpu_node = tuple(gpu_ids), tuple(gpu_node)
        self.gpu_kind, self.gpu_memory = tuple(kinds), tuple(memory)
        self.node_gpus = tuple(node_gpus)
        self.index = index
        # (kind, memory) -> node -> GPUs that fit; filled by core.placement.ShapeBook.
        self.filters: dict[tuple[str | None, int | None], dict[int, tuple[int, ...]]] = {}


# The last layout built, with its topology: the service plans over one Topology object for
# many cycles, and numbering 2,400 GPUs is a visible share of a cycle. A memo of a pure
# function of an immutable value (checked by identity), so plan() stays pure.
_last_layout: list[tuple[Topology, Layout]] = []


def layout_of(topology: Topology) -> Layout:
    last = _last_layout[0] if _last_layout else None
    if last is not None and last[0] is topology:
        return last[1]
    layout = Layout(topology)
    _last_layout[:] = [(topology, layout)]
    return layout


class Cluster:
    """Mutable, cycle-local state; see the module docstring. Not shared between cycles."""

    def __init__(
        self,
        topology: Topology,
        now: Instant,
        node_states: Mapping[str, NodeState],
        blocked_gpus: Iterable[str],
        batch_nodes: frozenset[str] | None = None,
    ) -> None:
        self.now = now
        self.layout = layout = layout_of(topology)
        self.node_ids = layout.node_ids
        self.node_gpus = layout.node_gpus
        self.gpu_ids = layout.gpu_ids
        self.gpu_node = layout.gpu_node
        self.gpu_kind = layout.gpu_kind
        self.gpu_memory = layout.gpu_memory
        self.index = layout.index
        self.node_usable: list[bool] = []
        for node_id in self.node_ids:
            state = node_states.get(node_id)
            self.node_usable.append(state is None or (state.up and not state.draining))
        self.node_runs_batch = [batch_nodes is None or n in batch_nodes for n in self.node_ids]
        size = len(self.gpu_ids)
        self.blocked: list[bool] = [not self.node_usable[n] for n in self.gpu_node]
        for gpu_id in blocked_gpus:
            found = self.index.get(gpu_id)
            if found is not None:
                self.blocked[found] = True
        self.busy: list[Instant] = [OPEN_END if b else now for b in self.blocked]
        self.floor: list[Instant] = list(self.busy)
        self._node_floors: list[list[Instant] | None] = [None] * len(self.node_ids)
        # Most GPUs have no bookings or reservations: they share one empty tuple, and get a
        # list of their own when they get one (thousands of empty lists per cycle add up).
        self.bookings: list[Sequence[Span]] = [()] * size
        self.reservations: list[Sequence[tuple[Instant, Instant]]] = [()] * size
        self.node_free: list[int] = [0] * len(self.node_ids)
        self.buckets: list[list[int]] = []
        self.free_total = 0
        self.log: list[int] = []

    # -- building -------------------------------------------------------------------------

    def add_bookings(self, bookings: Iterable[Booking]) -> None:
        """Index the active bookings that still matter (they end after ``now``), by start.
        Called once, while building."""
        now, index, per_gpu = self.now, self.index, self.bookings
        found: dict[int, list[Booking]] = {}
        active = BookingStatus.ACTIVE
        for booking in bookings:
            if booking.end <= now or booking.end <= booking.start or booking.status is not active:
                continue
            for gpu_id in booking.gpu_ids:
                g = index.get(gpu_id)
                if g is None:
                    continue
                spans = found.get(g)
                if spans is None:
                    found[g] = [booking]
                else:
                    spans.append(booking)
        for g, spans in found.items():
            if len(spans) > 1:
                spans.sort(key=_start_of)
            per_gpu[g] = spans

    def hold(self, gpus: Iterable[int], until: Instant) -> None:
        """GPUs held until ``until`` (a running job, a start): never earlier than now + 1, so
        a GPU still listed as held is never handed out in this cycle."""
        until = max(until, self.now + 1)
        busy = self.busy
        if not self.buckets:  # still building: no index to maintain yet
            for g in gpus:
                if until > busy[g]:
                    busy[g] = until
            return
        touched: set[int] = set()
        for g in gpus:
            if until > busy[g]:
                self._set_busy(g, until)
                touched.add(self.gpu_node[g])
        self._logged(touched)

    def release_at(self, gpus: Iterable[int], at: Instant) -> None:
        """GPUs whose holder is being stopped: free from ``at`` (after the grace period)."""
        at = max(at, self.now + 1)
        touched: set[int] = set()
        for g in gpus:
            if not self.blocked[g]:
                self._set_busy(g, at)
                touched.add(self.gpu_node[g])
        self._logged(touched)

    def index_free(self) -> None:
        """Count free GPUs per node and bucket the nodes; call once, when the running jobs'
        holds are in (and before any reservation)."""
        now, busy = self.now, self.busy
        self.floor = list(busy)
        width = max((len(gpus) for gpus in self.node_gpus), default=0)
        self.buckets = [[] for _ in range(width + 1)]
        self.free_total = 0
        for n, gpus in enumerate(self.node_gpus):
            free = sum(1 for g in gpus if busy[g] <= now)
            self.node_free[n] = free
            self.free_total += free
            if self.node_usable[n]:
                self.buckets[free].append(n)

    # -- queries --------------------------------------------------------------------------

    def usable_at(
        self, gpus: Sequence[int], start: Instant, want: Want, *, check_busy: bool = True
    ) -> list[int]:
        """The GPUs of ``gpus`` (in order) the job could take from ``start``: free by then
        (unless ``check_busy`` is off: "if their holders were gone"), no foreign booking in
        its window, no reservation in its claim."""
        busy, bookings, reservations = self.busy, self.bookings, self.reservations
        book_end, claim_end = want.ends(start)
        out: list[int] = []
        for g in gpus:
            if check_busy and busy[g] > start:
                continue
            if bookings[g] and _foreign(bookings[g], start, book_end, want):
                continue
            if reservations[g] and _overlaps(reservations[g], start, claim_end):
                continue
            out.append(g)
        return out

    def next_foreign(self, g: int, start: Instant, want: Want) -> Instant:
        """Start of the first foreign booking on ``g`` at or after ``start`` (``OPEN_END``
        if none): how long an open-ended job placed there could run."""
        for span in self.bookings[g]:
            if span.start >= start and want.foreign(span.user, span.id):
                return span.start
        return OPEN_END

    def gpu_earliest(self, g: int, start: Instant, want: Want) -> Instant:
        """Earliest instant from ``start`` at which ``g`` alone could take the job's claim
        (``OPEN_END``: never): past its holder, then past each foreign booking and
        reservation in the way, until a gap fits. For ``per`` GPUs of a node, the per-th
        smallest of these is the first instant worth trying. Bookings (and reservations)
        of one GPU never overlap, so one forward pass over each list suffices."""
        at = self.busy[g]
        if at < start:
            at = start
        spans, held = self.bookings[g], self.reservations[g]
        ends, foreign = want.ends, want.foreign
        i = j = 0
        while at < OPEN_END:
            book_end, claim_end = ends(at)
            while i < len(spans) and spans[i].start < book_end:
                span = spans[i]
                if span.end > at and foreign(span.user, span.id):
                    break
                i += 1
            else:
                while j < len(held) and held[j][0] < claim_end and held[j][1] <= at:
                    j += 1
                if j == len(held) or held[j][0] >= claim_end:
                    return at
                at = held[j][1]
                continue
            at = spans[i].end
        return OPEN_END

    def earliest_each(self, gpus: Sequence[int], start: Instant, want: Want) -> list[Instant]:
        """``gpu_earliest`` of each GPU; GPUs without bookings or reservations (most of
        them) take a shortcut."""
        busy, bookings, reservations = self.busy, self.bookings, self.reservations
        out: list[Instant] = []
        for g in gpus:
            if bookings[g] or reservations[g]:
                out.append(self.gpu_earliest(g, start, want))
            else:
                at = busy[g]
                out.append(at if at > start else start)
        return out

    def events_after(self, gpus: Sequence[int], start: Instant, want: Want) -> set[Instant]:
        """Instants after ``start`` when something on ``gpus`` ends (a holder, a foreign
        booking, a reservation): the only candidate starts an estimate needs to try."""
        out: set[Instant] = set()
        for g in gpus:
            b = self.busy[g]
            if start < b < OPEN_END:
                out.add(b)
            for span in self.bookings[g]:
                if span.end > start and want.foreign(span.user, span.id):
                    out.add(span.end)
            for _, hi in self.reservations[g]:
                if start < hi < OPEN_END:
                    out.add(hi)
        return out

    # -- changes --------------------------------------------------------------------------

    def start(self, gpus: Iterable[int], claim_end: Instant) -> None:
        """A job starts now on ``gpus``."""
        self.hold(gpus, claim_end)

    def reserve(self, gpus: Iterable[int], start: Instant, end: Instant) -> None:
        """Promise ``[start, end)`` on ``gpus`` to a blocked job."""
        touched: set[int] = set()
        for g in gpus:
            held = list(self.reservations[g])
            insort(held, (start, end))
            self.reservations[g] = held
            self._refloor(g)
            touched.add(self.gpu_node[g])
        self._logged(touched)

    def _logged(self, nodes: Iterable[int]) -> None:
        """Record changed nodes, once per node per change (readers dedupe anyway; a job
        on eight GPUs of a node is one entry, not eight)."""
        self.log.extend(sorted(nodes))

    def _set_busy(self, g: int, until: Instant) -> None:
        """Change one GPU's holder end; the caller logs the node."""
        was_free = self.busy[g] <= self.now
        self.busy[g] = until
        self._refloor(g)
        n = self.gpu_node[g]
        if was_free and until > self.now:
            self._move(n, self.node_free[n] - 1)
            self.free_total -= 1

    def _move(self, n: int, free: int) -> None:
        old = self.node_free[n]
        self.node_free[n] = free
        if not self.node_usable[n]:
            return
        bucket = self.buckets[old]
        del bucket[bisect_left(bucket, n)]
        insort(self.buckets[free], n)

    def _refloor(self, g: int) -> None:
        at = self.busy[g]
        for lo, hi in self.reservations[g]:
            if lo <= at < hi:
                at = hi
        self.floor[g] = at
        self._node_floors[self.gpu_node[g]] = None

    def node_floors(self, n: int) -> list[Instant]:
        """The node's GPU floors, ascending (cached until one changes): the k-th is when k
        of its GPUs could be free at the earliest."""
        floors = self._node_floors[n]
        if floors is None:
            floors = self._node_floors[n] = sorted(map(self.floor.__getitem__, self.node_gpus[n]))
        return floors
