"""Preemption: running jobs that must stop, for a foreign booking or for a higher job.

Two reasons to stop a running job:

- **A foreign booking begins** (ledger rule 3): an open-ended job may sit on GPUs a booking
  will take; when the booking starts the job is preempted, and its owner is warned
  ``booking_warning_s`` ahead with a ``Notice``.
- **A blocked job may preempt** (ADR 0011), by these rules only: (a) the victim's priority
  class (``priority`` plus its tenant's tier; ``PriorityModel.class_of``) is strictly lower,
  or (b) the victim runs on GPUs borrowed by another tenant while the preemptor's tenant is
  within its quota (borrowing lends idle capacity; it does not keep it). Age and fair-share
  order the queue but never justify killing running work, so equals of one class within
  their quotas never preempt each other. Never a victim: a job already stopping, one
  preempted ``max_preemptions`` times, or one the preemptor was preempted for within
  ``thrash_window_s`` (and the planner does not start a job while the job it was preempted
  for within that window still waits: it would take back the GPUs freed for that job).
  Borrowed victims go first; a victim that has not yet run ``min_runtime_s`` is not stopped
  but waited for (``Candidate.ready_at``): the planner then does not pick other victims of
  a higher class instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import combinations
from typing import NamedTuple

from procplan.core.availability import Cluster
from procplan.core.jobs import OPEN_END, Job, Notice, Policy, Preemption
from procplan.core.ledger.rules import Want
from procplan.core.placement import Placement, Shape, choose_gpus
from procplan.core.timeutil import Instant, to_iso

__all__ = [
    "Candidate",
    "booking_watch",
    "find_victims",
    "swapped",
    "victim_pool",
    "worst_class",
]


class Candidate(NamedTuple):
    """A running job that could be preempted; ``favoured`` victims (borrowed GPUs of
    another tenant) go first."""

    job: Job
    priority: float  # the victim's class (``PriorityModel.class_of``)
    gpus: tuple[int, ...]
    favoured: bool
    ready_at: Instant  # when it will have run ``min_runtime_s`` (now or earlier: ready)


def booking_watch(
    cluster: Cluster, job: Job, gpus: Sequence[int], policy: Policy
) -> tuple[Instant, Preemption | None, list[Notice]]:
    """For a running open-ended job not yet stopping: when it will have to stop (the next
    foreign booking's start plus the grace period), a ``Preemption`` if a foreign booking
    has begun, and notices for foreign bookings beginning within the warning period."""
    now = cluster.now
    want = Want(job.user, job.booking_id, None)
    horizon = now + policy.booking_warning_s
    next_start = OPEN_END
    soon: dict[int, Instant] = {}
    for g in gpus:
        for span in cluster.bookings[g]:
            if not want.foreign(span.user, span.id):
                continue
            if span.start <= now:
                reason = (
                    f"booking {span.id} of {span.user} on GPU {cluster.gpu_ids[g]} "
                    f"began at {to_iso(span.start)}"
                )
                return now + policy.preempt_grace_s, Preemption(job.id, None, reason), []
            next_start = min(next_start, span.start)
            if span.start > horizon:
                break
            soon[span.id] = span.start
    notices = [Notice(job.id, b, at) for b, at in sorted(soon.items(), key=lambda i: (i[1], i[0]))]
    until = OPEN_END if next_start >= OPEN_END else next_start + policy.preempt_grace_s
    return until, None, notices


def victim_pool(
    running: Iterable[tuple[Job, tuple[int, ...]]],
    preemptor: Job,
    class_of: Callable[[Job], int],
    within_quota: bool,
    now: Instant,
    policy: Policy,
) -> list[Candidate]:
    """The running jobs ``preemptor`` may stop (see the module docstring), including those
    that have not yet run ``min_runtime_s`` (their ``ready_at`` is in the future)."""
    rank = class_of(preemptor)
    window_start = now - policy.thrash_window_s
    pool: list[Candidate] = []
    for job, gpus in running:
        if job.preempt_at is not None or not gpus:
            continue
        if job.preemptions >= policy.max_preemptions:
            continue
        if swapped(preemptor, job, window_start):
            continue
        favoured = job.borrowed and job.tenant != preemptor.tenant and within_quota
        job_rank = class_of(job)
        if favoured or job_rank < rank:
            started = job.started_at if job.started_at is not None else now
            ready_at = started + policy.min_runtime_s
            pool.append(Candidate(job, job_rank, gpus, favoured, ready_at))
    return pool


def drain_pool(running: Iterable[tuple[Job, tuple[int, ...]]], now: Instant) -> list[Candidate]:
    """The open-ended running jobs, as the holders a drain waits for (ADR 0015): none is
    stopped; the search for the fewest of them reuses ``find_victims``."""
    return [
        Candidate(job, 0.0, gpus, False, now)
        for job, gpus in running
        if job.time_limit_s is None and job.preempt_at is None and gpus
    ]


def swapped(job: Job, other: Job, window_start: Instant) -> bool:
    """``job`` was last preempted for ``other`` after ``window_start``: ``job`` may not take
    GPUs back from ``other`` (the thrash guard)."""
    at = job.last_preempted_at
    return job.preempted_by == other.id and at is not None and at > window_start


def worst_class(victims: Iterable[Candidate]) -> tuple[bool, float]:
    """The highest victim class of a set (lower is cheaper: borrowed first, then priority)."""
    return max((not v.favoured, v.priority) for v in victims)


# (victim class of the worst victim, victims, GPUs they hold, GPU-seconds of work lost):
# lower is better. A victim's class is (not borrowed-from-another-tenant, priority), so sets
# of borrowed jobs come first, then sets whose highest priority is lowest.
_Class = tuple[bool, float]
_Key = tuple[_Class, int, int, int]
_Offer = tuple[Candidate, list[int]]  # a victim and its GPUs on the node being considered
_NO_CLASS: _Class = (False, float("-inf"))
_NO_VICTIMS: _Key = (_NO_CLASS, 0, 0, 0)


def _victim_class(item: _Offer) -> _Class:
    return (not item[0].favoured, item[0].priority)


def _set_key(taken: Sequence[_Offer], now: Instant) -> _Key:
    victims = [victim for victim, _ in taken]
    lost = sum((now - (v.job.started_at or now)) * len(v.gpus) for v in victims)
    worst = max(_victim_class(item) for item in taken)
    return (worst, len(victims), sum(len(v.gpus) for v in victims), lost)


def _cheapest_pool(offered: list[_Offer], need: int) -> list[_Offer] | None:
    """The victims of the lowest classes that together free ``need`` GPUs: whole classes are
    added in order until enough, so every sufficient set drawn from the pool has the lowest
    possible worst class."""
    ordered = sorted(offered, key=_victim_class)
    pool: list[_Offer] = []
    got = 0
    for i, item in enumerate(ordered):
        pool.append(item)
        got += len(item[1])
        last_of_class = i + 1 == len(ordered) or _victim_class(ordered[i + 1]) != _victim_class(
            item
        )
        if got >= need and last_of_class:
            return pool
    return None


def _minimal(offered: list[_Offer], need: int, now: Instant) -> list[_Offer] | None:
    """The best set (``_Key``) freeing ``need`` GPUs on the node: from the cheapest pool, the
    fewest victims, then the fewest GPUs, then the least work lost. The fewest victims is
    the smallest k whose k biggest offers suffice; only sets of that size are tried (a node
    has a handful of victims, so that is at most a few dozen sets)."""
    pool = _cheapest_pool(offered, need)
    if pool is None:
        return None
    pool.sort(key=lambda item: item[0].job.id)
    sizes = sorted((len(item[1]) for item in pool), reverse=True)
    fewest = next(k for k in range(1, len(sizes) + 1) if sum(sizes[:k]) >= need)
    sets = [list(c) for c in combinations(pool, fewest) if sum(len(i[1]) for i in c) >= need]
    return min(sets, key=lambda taken: _set_key(taken, now))


def _option_at(
    cluster: Cluster,
    gpus: Sequence[int],
    per: int,
    want: Want,
    at: Instant,
    holder: dict[int, Candidate],
) -> tuple[_Key, Instant, list[Candidate], list[int]] | None:
    """The best victim set on one node that makes ``per`` GPUs usable at ``at``, how long an
    open-ended job could then keep them, and the GPUs it would take."""
    clear = cluster.usable_at(gpus, at, want, check_busy=False)
    if len(clear) < per:
        return None  # bookings or reservations in the way whoever holds the GPUs
    busy = cluster.busy
    free = [g for g in clear if busy[g] <= at]
    offered: dict[int, _Offer] = {}
    if len(free) < per:
        for g in clear:
            victim = holder.get(g)
            if victim is not None and busy[g] > at:
                offered.setdefault(victim.job.id, (victim, []))[1].append(g)
        taken = _minimal(list(offered.values()), per - len(free), cluster.now)
        if taken is None:
            return None
    else:
        taken = []
    usable = sorted(free + [g for _, held in taken for g in held], key=gpus.index)
    horizon, chosen = choose_gpus(cluster, usable, per, want, at)
    key = _set_key(taken, cluster.now) if taken else _NO_VICTIMS
    return key, horizon, [victim for victim, _ in taken], chosen


def _bound(
    cluster: Cluster, gpus: Sequence[int], per: int, at: Instant, classes: dict[int, _Class]
) -> _Class | None:
    """A lower bound of the worst victim class a node needs, from its holders alone: the
    class of the GPU that completes ``per`` when victims' GPUs are taken cheapest class
    first (bookings and reservations can only take GPUs away). ``None``: hopeless."""
    busy = cluster.busy
    free = 0
    held: list[_Class] = []
    for g in gpus:
        if busy[g] <= at:
            free += 1
        elif g in classes:
            held.append(classes[g])
    need = per - free
    if need <= 0:
        return _NO_CLASS
    if len(held) < need:
        return None
    held.sort()
    return held[need - 1]


def find_victims(
    cluster: Cluster,
    shape: Shape,
    want: Want,
    pool: Sequence[Candidate],
    at: Instant,
) -> tuple[list[Candidate], Placement] | None:
    """A minimal victim set from ``pool`` after which the job can start at ``at`` (now plus
    the grace period) with every rule checked (bookings, reservations, kind, memory), and
    the placement it would get; ``None`` when preemption cannot make it fit or is not
    needed. Nodes are examined by a lower bound of their cost (``_bound``), and the search
    stops once no remaining node can beat the ones found (its worst class would be higher)."""
    holder = {g: victim for victim in pool for g in victim.gpus}
    classes = {g: (not victim.favoured, victim.priority) for g, victim in holder.items()}
    bounds: list[tuple[_Class, int]] = []
    for n, gpus in shape.nodes.items():
        bound = _bound(cluster, gpus, shape.per, at, classes)
        if bound is not None:
            bounds.append((bound, n))
    bounds.sort()
    options: list[tuple[_Key, Instant, int, list[Candidate], list[int]]] = []
    for bound, n in bounds:
        if len(options) >= shape.count and bound > options[shape.count - 1][0][0]:
            break
        option = _option_at(cluster, shape.nodes[n], shape.per, want, at, holder)
        if option is not None:
            key, horizon, chosen, placed = option
            options.append((key, -horizon, n, chosen, placed))
            options.sort(key=lambda item: item[:3])
    if len(options) < shape.count:
        return None
    picked = options[: shape.count]
    victims = {v.job.id: v for *_, chosen, _ in picked for v in chosen}
    if not victims:
        return None
    placement = sorted((n, gpus) for _, _, n, _, gpus in picked)
    return [victims[k] for k in sorted(victims)], placement
