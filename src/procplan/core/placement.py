"""Where a job can run: static eligibility per job shape, placement now, and the earliest
start a blocked job could get (its backfill reservation).

Jobs are grouped by *shape* (GPUs per node, node count, kind, memory, pinned node, named
booking): all jobs of a shape see the same eligible GPUs, so eligibility is computed once per
shape and cycle, and so is the node order the estimate search walks.

Scoring, in order: for open-ended jobs the farthest next foreign booking (the job runs until
one begins); then best fit, the node left with the fewest free GPUs (keeps whole nodes whole
for big jobs); then config order. Within a node GPUs go in PCI order (open-ended jobs: the
farthest foreign booking first).

A CPU-only (zero-GPU) batch job takes no GPU: it goes to the eligible node running the fewest
jobs, then config order (``least_loaded``).

A multi-node job that names no GPU kind runs on one GPU model (a gang mixing A100s and H100s
runs at the pace of the slowest and may not even share a NCCL build): its shape has one
*alternative* per kind that could hold it, and ``place_now`` / ``earliest_start`` take the
kind that places it best now, else the earliest (ties: the kind met first in config order).
``gpu_kind="any"`` (``--gpu-type any``) lets a gang mix models. Single-node jobs are
unchanged.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter

from procplan.core.availability import Cluster
from procplan.core.jobs import OPEN_END, Job, JobKind, Reason
from procplan.core.ledger.rules import Want
from procplan.core.model import Booking
from procplan.core.timeutil import Instant

__all__ = [
    "ANY_GPU_KIND",
    "Placement",
    "Shape",
    "ShapeBook",
    "ShapeKey",
    "choose_gpus",
    "earliest_start",
    "least_loaded",
    "nodes_by_fit",
    "options",
    "place_now",
    "shape_key",
]

# One (node index, GPU indices) pair per node the job spans, nodes in config order.
Placement = list[tuple[int, list[int]]]
ShapeKey = tuple[int, int, str | None, int | None, str | None, int | None, JobKind]
NodeGpus = dict[int, tuple[int, ...]]  # node index -> GPU indices (PCI order)
# A job's shape key (a C-level getter: it runs once per pending job per cycle).
shape_key = attrgetter(
    "gpu_count", "nodes", "gpu_kind", "gpu_memory_mb", "node_id", "booking_id", "kind"
)

# Pinned or booked shapes have few nodes: scanning them beats walking the free buckets.
_SMALL_SHAPE = 32
ANY_GPU_KIND = "any"
"""``gpu_kind`` that lets a multi-node job mix GPU models (by default a gang gets one)."""


class Shape:
    """What every job of one shape can use. ``reason`` is set when none can run now whatever
    the load (unsatisfiable, nodes down, booking not active); ``nodes`` maps each usable node
    (config order) to its eligible GPUs (PCI order). ``alternatives``: a gang that must stay
    on one GPU model has one shape per model (``nodes`` is then their union) and is placed on
    one of them."""

    __slots__ = (
        "alternatives",
        "count",
        "estimate",
        "lb_of",
        "lb_sorted",
        "log_pos",
        "nodes",
        "per",
        "reason",
    )

    def __init__(
        self,
        per: int,
        count: int,
        nodes: dict[int, tuple[int, ...]] | None = None,
        reason: Reason | None = None,
        estimate: Instant | None = None,
    ) -> None:
        self.per = per
        self.count = count
        self.nodes: dict[int, tuple[int, ...]] = nodes or {}
        self.reason = reason
        self.estimate = estimate
        # Estimate search order: (lower bound of the earliest start, node), kept sorted.
        self.lb_sorted: list[tuple[Instant, int]] = []
        self.lb_of: dict[int, Instant] = {}
        self.log_pos = -1
        self.alternatives: tuple[Shape, ...] = ()


def options(shape: Shape) -> tuple[Shape, ...]:
    """The shapes a job of ``shape`` may be placed on as a whole: its alternatives (a gang on
    one GPU model: one per model), else itself. What searches over ``shape.nodes`` (now-fit
    summaries, victim sets) should loop over, so a gang is never planned across models."""
    return shape.alternatives or (shape,)


def _gpu_fits(cluster: Cluster, g: int, kind: str | None, memory: int | None) -> bool:
    if kind is not None and cluster.gpu_kind[g] != kind:
        return False
    if memory is None:
        return True
    have = cluster.gpu_memory[g]
    # Unknown memory fits, as in ``core.job_validation.matching_gpus``: a topology that does
    # not state memory (ProcPlan's config format has no such field) does not enforce it.
    return have is None or have >= memory


class ShapeBook:
    """The shapes met in one pass, built on first use; the kind/memory filters they share
    are computed once per (kind, memory)."""

    __slots__ = ("_bookings", "_by_id", "_cluster", "_filters", "node_index", "shapes")

    def __init__(self, cluster: Cluster, bookings: Iterable[Booking]) -> None:
        self._cluster = cluster
        self._bookings = bookings
        self._by_id: dict[int, Booking] | None = None  # built when a job names a booking
        self.node_index = {node_id: n for n, node_id in enumerate(cluster.node_ids)}
        self._filters = cluster.layout.filters  # depends on the topology only
        self.shapes: dict[ShapeKey, Shape] = {}

    def get(self, job: Job) -> Shape:
        key: ShapeKey = shape_key(job)
        shape = self.shapes.get(key)
        if shape is None:
            shape = self.shapes[key] = self._make(job)
        return shape

    def host_node(self, host: str | None) -> int | None:
        """The node a client's host name names: the node id itself or its short name
        (``gpu1`` for ``gpu1.lab.org``), as ``procplan run`` pins its jobs."""
        if not host:
            return None
        for candidate in (host, host.split(".")[0]):
            n = self.node_index.get(candidate)
            if n is not None:
                return n
        return None

    def _filtered(self, kind: str | None, memory: int | None) -> NodeGpus:
        """Per node (all nodes), its GPUs of that kind with at least that memory."""
        found = self._filters.get((kind, memory))
        if found is None:
            cluster = self._cluster
            if kind is None and memory is None:
                found = dict(enumerate(cluster.node_gpus))
            else:
                found = {
                    n: tuple([g for g in gpus if _gpu_fits(cluster, g, kind, memory)])
                    for n, gpus in enumerate(cluster.node_gpus)
                }
            self._filters[(kind, memory)] = found
        return found

    def _booked(self, job: Job, fitting: NodeGpus) -> NodeGpus | Shape:
        """The fitting GPUs of the booking the job names, or a Shape saying why not."""
        per, count = job.gpus_per_node, job.nodes
        if self._by_id is None:
            self._by_id = {b.id: b for b in self._bookings}
        booking = self._by_id.get(job.booking_id) if job.booking_id is not None else None
        now = self._cluster.now
        if booking is None or not booking.is_active or booking.end <= now:
            return Shape(per, count, reason=Reason.BOOKING_INACTIVE)
        if booking.start > now:
            return Shape(per, count, reason=Reason.BOOKING_INACTIVE, estimate=booking.start)
        n = self.node_index.get(booking.node_id)
        if n is None or (job.node_id is not None and job.node_id != booking.node_id):
            return Shape(per, count, reason=Reason.UNSATISFIABLE)
        index = self._cluster.index
        wanted = {index[g] for g in booking.gpu_ids if g in index}
        return {n: tuple(g for g in fitting[n] if g in wanted)}

    def _candidates(self, job: Job) -> NodeGpus | Shape:
        """Every node (usable or not) with the GPUs the job could ever use there."""
        kind = job.gpu_kind.lower() if job.gpu_kind else None
        if kind == ANY_GPU_KIND:
            kind = None
        fitting = self._filtered(kind, job.gpu_memory_mb)
        if job.booking_id is not None:
            return self._booked(job, fitting)
        if job.node_id is None:
            return fitting
        n = self.node_index.get(job.node_id)
        if n is None:
            return Shape(job.gpus_per_node, job.nodes, reason=Reason.UNSATISFIABLE)
        return {n: fitting[n]}

    def _make(self, job: Job) -> Shape:
        """Static eligibility of ``job``'s shape (see ``Shape``)."""
        per, count = job.gpus_per_node, job.nodes
        bad_split = count < 1 or job.gpu_count < 0 or per * count != job.gpu_count
        if bad_split or (count > 1 and (job.node_id is not None or job.booking_id is not None)):
            return Shape(per, max(count, 1), reason=Reason.UNSATISFIABLE)
        candidates = self._candidates(job)
        if isinstance(candidates, Shape):
            return candidates
        one_kind = count > 1 and per > 0 and not job.gpu_kind
        enough = self._enough_one_kind if one_kind else _enough_nodes
        eligible = {n: gpus for n, gpus in candidates.items() if len(gpus) >= per}
        if not enough(eligible, per, count):
            return Shape(per, count, reason=Reason.UNSATISFIABLE)
        usable = self._cluster.node_usable
        nodes = {n: gpus for n, gpus in eligible.items() if usable[n]}
        if not enough(nodes, per, count):
            return Shape(per, count, reason=Reason.NODE_DOWN)
        if job.kind is JobKind.BATCH:  # someone must run it: only nodes with an agent
            runs = self._cluster.node_runs_batch
            nodes = {n: gpus for n, gpus in nodes.items() if runs[n]}
            if not enough(nodes, per, count):
                return Shape(per, count, reason=Reason.NO_AGENT)
        shape = Shape(per, count, nodes)
        if one_kind:
            kinds = self._by_kind(nodes, per, count)
            if len(kinds) > 1 or kinds[0].nodes != nodes:
                shape.alternatives = tuple(kinds)
        return shape

    def _by_kind(self, nodes: NodeGpus, per: int, count: int) -> list[Shape]:
        """One shape per GPU model with at least ``count`` nodes of ``per`` GPUs of it, models
        in the order config order meets them."""
        kinds = self._cluster.gpu_kind
        split: dict[str, dict[int, list[int]]] = {}
        for n, gpus in nodes.items():
            for g in gpus:  # PCI order is kept
                split.setdefault(kinds[g], {}).setdefault(n, []).append(g)
        found = []
        for per_node in split.values():
            held = {n: tuple(gpus) for n, gpus in per_node.items() if len(gpus) >= per}
            if len(held) >= count:
                found.append(Shape(per, count, held))
        return found

    def _enough_one_kind(self, nodes: NodeGpus, per: int, count: int) -> bool:
        return bool(self._by_kind(nodes, per, count))


def _enough_nodes(nodes: NodeGpus, per: int, count: int) -> bool:
    return len(nodes) >= count


# -- choosing GPUs and nodes --------------------------------------------------------------


def choose_gpus(
    cluster: Cluster, usable: Sequence[int], per: int, want: Want, start: Instant
) -> tuple[Instant, list[int]]:
    """``per`` of the usable GPUs and how long the job could keep them (the earliest next
    foreign booking among them; ``OPEN_END`` for jobs with a time limit, which already
    avoid every foreign booking in their window)."""
    if want.length is not None or per == 0:
        return OPEN_END, list(usable[:per])
    ranked = sorted(
        ((cluster.next_foreign(g, start, want), i, g) for i, g in enumerate(usable)),
        key=lambda item: (-item[0], item[1]),
    )[:per]
    horizon = min(item[0] for item in ranked)
    return horizon, sorted((item[2] for item in ranked), key=usable.index)


def nodes_by_fit(cluster: Cluster, shape: Shape) -> Iterator[tuple[int, int]]:
    """(free GPUs now, node) for nodes that have enough free GPUs, fullest first, then
    config order: the best-fit order."""
    per, nodes, node_free = shape.per, shape.nodes, cluster.node_free
    if len(nodes) <= _SMALL_SHAPE:
        yield from sorted((node_free[n], n) for n in nodes if node_free[n] >= per)
        return
    for free in range(max(per, 0), len(cluster.buckets)):
        for n in cluster.buckets[free]:
            if n in nodes:
                yield free, n


def place_now(cluster: Cluster, shape: Shape, want: Want) -> Placement | None:
    """The best placement starting now, or ``None``. A shape with alternatives (a gang on
    one GPU model) takes the alternative whose nodes score best (ties: the first)."""
    if cluster.free_total < shape.per * shape.count:
        return None
    if not shape.alternatives:
        found = _place_now(cluster, shape, want)
        return None if found is None else found[1]
    best: tuple[tuple[int, int], Placement] | None = None
    for alternative in shape.alternatives:
        found = _place_now(cluster, alternative, want)
        if found is not None and (best is None or found[0] < best[0]):
            best = found
    return None if best is None else best[1]


def _place_now(
    cluster: Cluster, shape: Shape, want: Want
) -> tuple[tuple[int, int], Placement] | None:
    """``place_now`` for one shape, with its score (summed horizon key and left-over GPUs:
    lower is better)."""
    per, count, now = shape.per, shape.count, cluster.now
    ideal = -OPEN_END if want.length is None else 0
    picks: list[tuple[tuple[int, int, int], list[int]]] = []
    ideal_found = 0
    for free, n in nodes_by_fit(cluster, shape):
        usable = cluster.usable_at(shape.nodes[n], now, want)
        if len(usable) < per:
            continue
        horizon, gpus = choose_gpus(cluster, usable, per, want, now)
        primary = -horizon if want.length is None else 0
        picks.append(((primary, free - per, n), gpus))
        ideal_found += primary == ideal
        if ideal_found >= count:
            break  # nothing later in best-fit order can beat these
    if len(picks) < count:
        return None
    picks.sort()
    chosen = picks[:count]
    score = (sum(key[0] for key, _ in chosen), sum(key[1] for key, _ in chosen))
    return score, sorted((key[2], gpus) for key, gpus in chosen)


def least_loaded(shape: Shape, node_jobs: Sequence[int]) -> Placement:
    """A CPU-only job's nodes (no GPUs): the shape's ``count`` nodes running the fewest
    jobs, ties by config order. Every running job counts, GPU or not: each has processes on
    the node's CPUs, and spreading keeps CPU work off the busiest nodes. Deterministic, so
    an unchanged snapshot gives the same plan."""
    if shape.count == 1:
        return [(min(shape.nodes, key=lambda n: (node_jobs[n], n)), [])]
    chosen = sorted(shape.nodes, key=lambda n: (node_jobs[n], n))[: shape.count]
    return [(n, []) for n in sorted(chosen)]


# -- earliest start (estimates and reservations) ------------------------------------------


def _node_bound(cluster: Cluster, n: int, gpus: Sequence[int], per: int) -> Instant:
    """A lower bound of when ``per`` of the node's eligible GPUs could all be free."""
    if per <= 0:
        return cluster.now
    if len(gpus) == len(cluster.node_gpus[n]):  # the whole node is eligible: shared cache
        return cluster.node_floors(n)[per - 1]
    return sorted(map(cluster.floor.__getitem__, gpus))[per - 1]


def _refresh(cluster: Cluster, shape: Shape) -> None:
    """Bring the shape's node order up to date with the cluster's change log."""
    log = cluster.log
    if shape.log_pos < 0:
        per, nodes, whole = shape.per, list(shape.nodes), cluster.node_gpus
        node_floors = cluster.node_floors
        bounds = [
            node_floors(n)[per - 1]
            if per > 0 and len(gpus) == len(whole[n])
            else _node_bound(cluster, n, gpus, per)
            for n, gpus in shape.nodes.items()
        ]
        shape.lb_of = dict(zip(nodes, bounds, strict=True))
        shape.lb_sorted = sorted(zip(bounds, nodes, strict=True))
    elif shape.log_pos < len(log):
        for n in set(log[shape.log_pos :]):
            gpus = shape.nodes.get(n)
            if gpus is None:
                continue
            entries = shape.lb_sorted
            del entries[bisect_left(entries, (shape.lb_of[n], n))]
            shape.lb_of[n] = bound = _node_bound(cluster, n, gpus, shape.per)
            insort(entries, (bound, n))
    shape.log_pos = len(log)


def _node_earliest(
    cluster: Cluster, gpus: Sequence[int], per: int, want: Want, start: Instant, limit: Instant
) -> tuple[Instant, list[int]] | None:
    """Earliest instant in ``[start, limit]`` when ``per`` of the node's GPUs are usable.

    Nothing earlier than the per-th smallest single-GPU earliest start can work, and that
    instant usually does; otherwise only the instants something ends need trying."""
    first = sorted(cluster.earliest_each(gpus, start, want))[per - 1]
    if first > limit:
        return None
    usable = cluster.usable_at(gpus, first, want)
    if len(usable) >= per:
        return first, choose_gpus(cluster, usable, per, want, first)[1]
    for at in sorted(cluster.events_after(gpus, first, want)):
        if at > limit:
            return None
        usable = cluster.usable_at(gpus, at, want)
        if len(usable) >= per:
            return at, choose_gpus(cluster, usable, per, want, at)[1]
    return None


def _scan(
    cluster: Cluster, shape: Shape, want: Want, start: Instant
) -> list[tuple[Instant, int, list[int]]]:
    """Per node, the earliest usable instant from ``start``, for nodes that can still matter:
    nodes are walked by lower bound and the walk stops once the bound passes the
    ``count``-th best found (for one node: ties go to the node found first)."""
    count = shape.count
    found: list[tuple[Instant, int, list[int]]] = []
    cut = OPEN_END - 1  # the count-th smallest instant found so far
    best: list[Instant] = []
    for bound, n in shape.lb_sorted:
        at = max(bound, start)
        limit = cut - 1 if count == 1 else cut
        if at > limit:
            break
        hit = _node_earliest(cluster, shape.nodes[n], shape.per, want, at, limit)
        if hit is None:
            continue
        found.append((hit[0], n, hit[1]))
        insort(best, hit[0])
        if len(best) >= count:
            cut = best[count - 1]
    return found


def earliest_start(cluster: Cluster, shape: Shape, want: Want) -> tuple[Instant, Placement] | None:
    """The earliest start (from now) and a placement for it given holders, foreign bookings
    and the reservations made so far; ``None`` if never (GPUs held open-ended, blocked).

    A multi-node job needs its nodes at the same instant: each round finds every node's
    earliest instant from ``start``; the ``count``-th smallest is a lower bound of the
    answer, and it is the answer once ``count`` nodes are usable exactly then. A shape with
    alternatives (a gang on one GPU model) takes the earliest of theirs (ties: the first)."""
    if shape.alternatives:
        best: tuple[Instant, Placement] | None = None
        for alternative in shape.alternatives:
            option = earliest_start(cluster, alternative, want)
            if option is not None and (best is None or option[0] < best[0]):
                best = option
        return best
    _refresh(cluster, shape)
    start = cluster.now
    while True:
        found = _scan(cluster, shape, want, start)
        if len(found) < shape.count:
            return None
        found.sort(key=lambda item: item[0])
        at = found[shape.count - 1][0]
        chosen = [item for item in found if item[0] == at]
        if len(chosen) >= shape.count:
            picked = chosen[: shape.count] if shape.count > 1 else [found[0]]
            return at, sorted((n, gpus) for _, n, gpus in picked)
        start = at
