""" "Could a job of this shape start now, and if not, why?" answered once per shape.

Most of a 10,000-job pass is jobs that cannot start: the cluster is full, or what is free is
booked or reserved. Asking the placement search for each of them would cost a scan of the
free nodes per job. Instead, per (shape, user whose bookings matter) a ``NowFit`` summary
holds the longest claim that could start now (and whether an open-ended one could), with
and without the pass's reservations, and whether enough GPUs are free at all. A job then
starts iff its claim fits the summary, and its pending reason follows from which rule stops
it: a reservation of a higher job (PRIORITY), foreign bookings (BOOKED) or busy GPUs
(RESOURCES).

During a pass free capacity only shrinks (starts take GPUs, reservations add claims; a
preemption frees GPUs only after the grace period), so a summary stays valid until a node it
drew on changes: each summary watches those nodes through the cluster's change log.
"""

from __future__ import annotations

from collections.abc import Iterable

from procplan.core.availability import Cluster, Want
from procplan.core.jobs import OPEN_END, Reason
from procplan.core.placement import Shape, nodes_by_fit
from procplan.core.timeutil import Instant

__all__ = ["NowFit", "now_fit", "now_fit_for_owner"]

_NONE = -1  # no claim length fits
_PRIORITY, _BOOKED, _RESOURCES = Reason.PRIORITY, Reason.BOOKED, Reason.RESOURCES


class NowFit:
    """Longest claims that fit now (``limit``: with reservations, ``limit_free``: ignoring
    them), open-ended fits, free capacity, and the nodes whose change can spoil it."""

    __slots__ = (
        "capacity",
        "limit",
        "limit_free",
        "log_pos",
        "nodes",
        "open",
        "open_free",
        "watch",
    )

    def __init__(self) -> None:
        self.limit = _NONE
        self.limit_free = _NONE
        self.open = False
        self.open_free = False
        self.capacity = False
        self.watch: set[int] = set()
        self.log_pos = 0
        # Per node with enough free GPUs: (limit, limit_free, open, open_free).
        self.nodes: dict[int, tuple[Instant, Instant, bool, bool]] = {}

    def fits(self, length: int | None) -> bool:
        return self.open if length is None else length <= self.limit

    def reason(self, length: int | None) -> Reason:
        """Why a claim of ``length`` does not fit now."""
        free_fit = self.open_free if length is None else length <= self.limit_free
        if free_fit:
            return _PRIORITY
        return _BOOKED if self.capacity else _RESOURCES

    def stale(self, cluster: Cluster) -> bool:
        """Has a watched node changed since the summary was made?"""
        log = cluster.log
        if self.log_pos == len(log):
            return False
        watch = self.watch
        changed = any(n in watch for n in log[self.log_pos :])
        self.log_pos = len(log)
        return changed


def _gpu_clearance(cluster: Cluster, g: int, want: Want) -> tuple[Instant, Instant]:
    """(seconds from now until the first foreign booking, until the first reservation) on a
    GPU free now; 0 when one is active now."""
    now = cluster.now
    booked = reserved = OPEN_END
    for span in cluster.bookings[g]:
        if span.user != want.user and span.id != want.booking_id:
            booked = max(span.start - now, 0)
            break
    held = cluster.reservations[g]
    if held:
        reserved = max(held[0][0] - now, 0)
    return booked, reserved


def _node_fit(
    cluster: Cluster, gpus: tuple[int, ...], per: int, want: Want
) -> tuple[Instant, Instant, bool, bool] | None:
    """One node's (limit, limit_free, open, open_free), or ``None`` without ``per`` free
    GPUs."""
    now, busy = cluster.now, cluster.busy
    pairs = [_gpu_clearance(cluster, g, want) for g in gpus if busy[g] <= now]
    if len(pairs) < per:
        return None
    full = sorted((min(b, r) for b, r in pairs), reverse=True)[per - 1]
    free = sorted((b for b, _ in pairs), reverse=True)[per - 1]
    open_full = sum(1 for b, r in pairs if b > 0 and r >= OPEN_END) >= per
    open_free = sum(1 for b, _ in pairs if b > 0) >= per
    return full, free, open_full, open_free


def _mth(values: list[Instant], m: int) -> Instant:
    """The m-th largest value (a multi-node job needs ``m`` distinct nodes), or none."""
    if len(values) < m:
        return _NONE
    return sorted(values, reverse=True)[m - 1]


def _summarise(fit: NowFit, m: int) -> NowFit:
    values = fit.nodes.values()
    fit.watch = set(fit.nodes)
    fit.capacity = len(values) >= m
    fit.limit = _mth([v[0] for v in values], m)
    fit.limit_free = _mth([v[1] for v in values], m)
    fit.open = sum(v[2] for v in values) >= m
    fit.open_free = sum(v[3] for v in values) >= m
    return fit


def now_fit(cluster: Cluster, shape: Shape, want: Want) -> NowFit:
    """Summarise what a job of ``shape`` (owning ``want.user``'s bookings) could start with
    now. ``want.length`` is ignored: the summary covers every claim length."""
    fit = NowFit()
    fit.log_pos = len(cluster.log)
    for _, n in nodes_by_fit(cluster, shape):
        node = _node_fit(cluster, shape.nodes[n], shape.per, want)
        if node is not None:
            fit.nodes[n] = node
    return _summarise(fit, shape.count)


def now_fit_for_owner(
    cluster: Cluster, shape: Shape, want: Want, anyone: NowFit, owned: Iterable[int]
) -> NowFit:
    """``now_fit`` for a user who owns bookings on the ``owned`` nodes, derived from the
    (fresh) summary for a user who owns none: only those nodes can differ."""
    fit = NowFit()
    fit.log_pos = len(cluster.log)
    fit.nodes = dict(anyone.nodes)
    for n in owned:
        gpus = shape.nodes.get(n)
        if gpus is None or cluster.node_free[n] < shape.per:
            continue
        node = _node_fit(cluster, gpus, shape.per, want)
        if node is not None:
            fit.nodes[n] = node
    return _summarise(fit, shape.count)
