"""Usage accounting (issue #14, ADR 0014): GPU time booked, used, idle and unbooked.

Pure: the store reads claims, job starts and GPU history buckets; this module turns them into
totals. No I/O, no clock: the caller clips the window to "now".

**What "used" means.** The history (``gpu_history``) keeps per-GPU aggregates of readings per
minute (and per hour once rolled up); it does *not* record whose processes ran on the GPU in
each minute, so usage cannot be attributed to a person per minute from what is stored. The
rule, from what is stored:

- a history bucket is **busy** when its mean utilization is at least ``threshold`` percent
  (``busy_bucket``); a busy bucket makes its whole span busy (an hourly bucket is as coarse as
  the history kept for that time);
- a GPU-second of a booking is **used** when a job of the booking's owner held a claim on that
  GPU at that second, or the second lies in a busy bucket of that GPU (whoever ran there:
  rule 2 of the ledger keeps other people's jobs off a booked GPU, so a busy booked GPU is
  almost always the owner's work);
- **idle while booked** is booked minus used;
- **used without booking** (the compliance view) is busy GPU time that no booking and no job
  claim covers: someone ran outside the scheduler. It is attributed to the node only; by user
  or tenant it is reported under ``UNATTRIBUTED``;
- a job's GPU time is its claims' time; ``jobs`` counts the jobs that started in the window and
  ``wait`` is their queue wait (start minus submission).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from operator import attrgetter
from typing import NamedTuple

from procplan.core.jobs import DEFAULT_TENANT

__all__ = [
    "UNATTRIBUTED",
    "By",
    "Efficiency",
    "FinishedJob",
    "Hold",
    "JobStart",
    "Sample",
    "Totals",
    "Usage",
    "account",
    "busy_bucket",
    "efficiency",
    "merge",
]

Span = tuple[int, int]
UNATTRIBUTED = "(unattributed)"  # busy GPU time with no booking and no job: owner unknown
NO_TENANT = DEFAULT_TENANT  # a booking of a user in no tenant: where their jobs go too


class By(Enum):
    """What a report groups by."""

    USER = "user"
    TENANT = "tenant"
    NODE = "node"


def busy_bucket(util_sum: float, util_n: int, threshold_pct: float) -> bool:
    """True when a history bucket's mean utilization reaches ``threshold_pct`` (no reading:
    not busy). The store filters with the same comparison in SQL (``sum >= t * n``)."""
    return util_n > 0 and util_sum >= threshold_pct * util_n


class Hold(NamedTuple):
    """One claim as accounting sees it: a GPU of ``node`` over ``[start, end)``, held by a
    booking (``booking``) or a job run (``job``) of ``user`` charged to ``tenant``. (A named
    tuple, not a dataclass: a month of a large cluster is a few hundred thousand of them.)"""

    gpu: str
    node: str
    start: int
    end: int
    user: str
    tenant: str
    booking: int | None = None
    job: int | None = None


class JobStart(NamedTuple):
    """A job (run) that started: counted in ``jobs`` and ``wait`` when ``started`` is in the
    window."""

    job: int
    user: str
    tenant: str
    nodes: tuple[str, ...]
    submitted: int
    started: int


@dataclass(slots=True)
class Totals:
    """Seconds of GPU time (``*_s``) and job counts of one report row."""

    booked_s: int = 0
    used_s: int = 0
    job_s: int = 0
    unbooked_s: int = 0
    jobs: int = 0
    wait_s: int = 0

    @property
    def idle_s(self) -> int:
        return self.booked_s - self.used_s

    @property
    def idle_fraction(self) -> float | None:
        return None if self.booked_s == 0 else self.idle_s / self.booked_s

    @property
    def mean_wait_s(self) -> float | None:
        return None if self.jobs == 0 else self.wait_s / self.jobs

    def add(self, other: Totals) -> None:
        self.booked_s += other.booked_s
        self.used_s += other.used_s
        self.job_s += other.job_s
        self.unbooked_s += other.unbooked_s
        self.jobs += other.jobs
        self.wait_s += other.wait_s


@dataclass(slots=True)
class Usage:
    """Everything ``account`` found: per booking ``(booked_s, used_s)``, per job GPU seconds,
    per GPU unbooked busy seconds, and the job starts in the window."""

    start: int
    end: int
    bookings: dict[int, tuple[int, int]] = field(default_factory=dict)
    jobs: dict[int, int] = field(default_factory=dict)
    unbooked: dict[str, int] = field(default_factory=dict)
    holds: list[Hold] = field(default_factory=list)
    parts: dict[int, tuple[int, int]] = field(default_factory=dict)  # hold index -> booked, used
    starts: list[JobStart] = field(default_factory=list)
    gpu_nodes: dict[str, str] = field(default_factory=dict)

    def grouped(self, by: By) -> dict[str, Totals]:
        """One ``Totals`` per user, tenant or node, sorted by key."""
        rows: dict[str, Totals] = {}

        def row(key: str) -> Totals:
            found = rows.get(key)
            if found is None:
                found = rows[key] = Totals()
            return found

        key_of = attrgetter({By.USER: "user", By.TENANT: "tenant", By.NODE: "node"}[by])
        lo, hi, parts = self.start, self.end, self.parts
        for index, hold in enumerate(self.holds):
            target = row(key_of(hold))
            if hold.booking is not None:
                booked, used = parts.get(index, (0, 0))
                target.booked_s += booked
                target.used_s += used
            else:
                target.job_s += min(hold.end, hi) - max(hold.start, lo)
        for gpu, seconds in self.unbooked.items():
            if seconds:
                key = self.gpu_nodes.get(gpu, UNATTRIBUTED) if by is By.NODE else UNATTRIBUTED
                row(key).unbooked_s += seconds
        for begun in self.starts:
            keys = {By.USER: (begun.user,), By.TENANT: (begun.tenant,), By.NODE: begun.nodes}[by]
            for key in keys:
                target = row(key)
                target.jobs += 1
                target.wait_s += max(begun.started - begun.submitted, 0)
        return dict(sorted(rows.items()))

    def total(self, rows: Mapping[str, Totals] | None = None) -> Totals:
        """All rows added up, jobs counted once however many nodes they ran on: pass the
        rows of a ``grouped(By.USER)`` or ``grouped(By.TENANT)`` to save regrouping."""
        out = Totals()
        for totals in (self.grouped(By.USER) if rows is None else rows).values():
            out.add(totals)
        return out


def merge(spans: Iterable[Span]) -> list[Span]:
    """The union of ``spans`` as sorted, disjoint, non-touching spans (empty ones dropped)."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _total(spans: Iterable[Span]) -> int:
    return sum(end - start for start, end in spans)


def _within(runs: Sequence[Span], starts: Sequence[int], lo: int, hi: int) -> list[Span]:
    """The parts of sorted disjoint ``runs`` (whose starts are ``starts``) inside
    ``[lo, hi)``: a slice, with only its two ends cut."""
    i = max(bisect_left(starts, lo) - 1, 0)
    j = bisect_left(starts, hi)
    out = list(runs[i:j])
    if out and out[0][1] <= lo:
        del out[0]
    if out:
        if out[0][0] < lo:
            out[0] = (lo, out[0][1])
        if out[-1][1] > hi:
            out[-1] = (out[-1][0], hi)
    return out


def _overlap(a: Sequence[Span], b: Sequence[Span]) -> int:
    """Seconds in both of two sorted disjoint span lists."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if end > start:
            total += end - start
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return total


def account(
    start: int,
    end: int,
    holds: Iterable[Hold],
    busy: Mapping[str, Sequence[Span]],
    starts: Iterable[JobStart] = (),
    gpu_nodes: Mapping[str, str] | None = None,
) -> Usage:
    """Account ``[start, end)``: ``holds`` are booking and job claims, ``busy`` the busy
    buckets per GPU id (any order, may touch or overlap), ``gpu_nodes`` maps GPU ids to node
    ids (for unbooked time of GPUs without holds). See the module docstring for the rules."""
    usage = Usage(start, end, gpu_nodes=dict(gpu_nodes or {}))
    per_gpu: dict[str, list[int]] = {}
    kept, nodes = usage.holds, usage.gpu_nodes
    for hold in holds:
        if hold.start < end and hold.end > start and hold.end > hold.start:
            found = per_gpu.get(hold.gpu)
            if found is None:
                found = per_gpu[hold.gpu] = []
                nodes.setdefault(hold.gpu, hold.node)
            found.append(len(kept))
            kept.append(hold)
    for gpu in set(per_gpu) | set(busy):
        _account_gpu(usage, per_gpu.get(gpu, []), busy.get(gpu, ()), gpu)
    usage.starts = [s for s in starts if start <= s.started < end]
    return usage


def _account_gpu(usage: Usage, indexes: list[int], busy: Sequence[Span], gpu: str) -> None:
    """One GPU: job seconds, each booking's booked and used seconds, unbooked busy seconds.
    Linear in the GPU's holds and busy spans (bisection finds the spans inside a booking)."""
    lo, hi = usage.start, usage.end
    runs = merge(busy)
    runs = _within(runs, [s for s, _ in runs], lo, hi)
    run_starts = [s for s, _ in runs]
    jobs_of: dict[str, list[Span]] = {}
    held: list[Span] = []
    for index in indexes:
        hold = usage.holds[index]
        span = (max(hold.start, lo), min(hold.end, hi))
        held.append(span)
        if hold.job is not None:
            usage.jobs[hold.job] = usage.jobs.get(hold.job, 0) + span[1] - span[0]
            jobs_of.setdefault(hold.user, []).append(span)
    own = {user: merge(spans) for user, spans in jobs_of.items()}
    own_starts = {user: [s for s, _ in spans] for user, spans in own.items()}
    for index in indexes:
        hold = usage.holds[index]
        if hold.booking is None:
            continue
        s, e = max(hold.start, lo), min(hold.end, hi)
        inside = _within(runs, run_starts, s, e)
        jobs = own.get(hold.user)
        if jobs:
            inside = merge(inside + _within(jobs, own_starts[hold.user], s, e))
        used = _total(inside)
        usage.parts[index] = (e - s, used)
        booked_before, used_before = usage.bookings.get(hold.booking, (0, 0))
        usage.bookings[hold.booking] = (booked_before + e - s, used_before + used)
    unbooked = _total(runs) - _overlap(runs, merge(held))
    if unbooked:
        usage.unbooked[gpu] = unbooked


@dataclass(frozen=True, slots=True)
class FinishedJob:
    """One row of ``procplan history``: a job that finished in the window."""

    id: int
    name: str
    user: str
    tenant: str
    kind: str
    state: str
    gpu_count: int
    nodes: tuple[str, ...]
    submitted: int
    started: int | None
    ended: int | None
    exit_code: int | None
    gpu_s: int


@dataclass(frozen=True, slots=True)
class Sample:
    """One history bucket of one GPU: utilization % and memory MB sums, counts and maxima."""

    gpu: str
    start: int
    step: int
    util_sum: float
    util_n: int
    util_max: float | None
    mem_sum: float
    mem_n: int
    mem_max: float | None


@dataclass(frozen=True, slots=True)
class Efficiency:
    """A ``seff``-like summary of one job: GPU seconds, wall seconds, and utilization and
    memory over the buckets its claims overlap (``None`` where nothing was reported)."""

    gpu_s: int
    wall_s: int
    util_mean: float | None
    util_peak: float | None
    mem_mean_mb: float | None
    mem_peak_mb: float | None
    samples: int

    def describe(self) -> str:
        """``seff`` in one line, for a job's end notification."""

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f}%"

        def gib(value: float | None) -> str:
            return "-" if value is None else f"{value / 1024:.1f} GiB"

        minutes = round(self.wall_s / 60)
        return (
            f"Efficiency: {self.gpu_s / 3600:.2f} GPU-h over {minutes} min; GPU util mean "
            f"{pct(self.util_mean)}, peak {pct(self.util_peak)}; memory mean "
            f"{gib(self.mem_mean_mb)}, peak {gib(self.mem_peak_mb)}"
        )


def efficiency(claims: Sequence[Hold], samples: Iterable[Sample]) -> Efficiency:
    """The job's figures from its claims (one per GPU and run) and the history buckets of its
    GPUs: a bucket counts when it overlaps one of the job's claims on that GPU. Means are
    per reading (sums over counts), peaks the largest reading."""
    by_gpu: dict[str, list[Span]] = {}
    for claim in claims:
        by_gpu.setdefault(claim.gpu, []).append((claim.start, claim.end))
    gpu_s = sum(max(c.end - c.start, 0) for c in claims)
    wall = merge((c.start, c.end) for c in claims)
    util, mem = _Agg(), _Agg()
    count = 0
    for sample in samples:
        spans = by_gpu.get(sample.gpu, ())
        end = sample.start + sample.step
        if not any(s < end and sample.start < e for s, e in spans):
            continue
        count += 1
        util.fold(sample.util_sum, sample.util_n, sample.util_max)
        mem.fold(sample.mem_sum, sample.mem_n, sample.mem_max)
    return Efficiency(
        gpu_s=gpu_s,
        wall_s=_total(wall),
        util_mean=util.mean(),
        util_peak=util.peak,
        mem_mean_mb=mem.mean(),
        mem_peak_mb=mem.peak,
        samples=count,
    )


class _Agg:
    """A running sum, count and maximum of one metric."""

    __slots__ = ("n", "peak", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.n = 0
        self.peak: float | None = None

    def fold(self, total: float, n: int, top: float | None) -> None:
        self.total += total
        self.n += n
        if top is not None and (self.peak is None or top > self.peak):
            self.peak = top

    def mean(self) -> float | None:
        return None if self.n == 0 else self.total / self.n
