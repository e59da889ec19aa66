""" "Could a job of this shape start now, and if not, why?" answered once per shape.

Most of a 10,000-job pass is jobs that cannot start: the cluster is full, or what is free is
booked or reserved. Asking the placement search for each of them would cost a scan of the
free nodes per job. Instead, per (shape, user whose bookings matter) a ``NowFit`` summary
holds, per node with enough free GPUs, the longest claim that could start there now (and
whether an open-ended one could), with and without the pass's reservations. A job starts
iff its claim fits the summary, and its pending reason follows from which rule stops it: a
reservation of a higher job (PRIORITY), foreign bookings (BOOKED) or busy GPUs (RESOURCES).

During a pass free capacity only shrinks (starts take GPUs, reservations add claims; a
preemption frees GPUs only after the grace period), so a node without enough free GPUs
never gets them back, and a summary is kept current by recomputing just the nodes that
changed (the cluster's change log says which).
"""

from __future__ import annotations

from collections.abc import Iterable

from procplan.core.availability import Cluster
from procplan.core.jobs import OPEN_END, Reason
from procplan.core.ledger.rules import Want
from procplan.core.placement import Shape, nodes_by_fit
from procplan.core.timeutil import Instant

__all__ = ["NowFit", "now_fit", "now_fit_for_owner"]

_NONE = -1  # no claim length fits
_PRIORITY, _BOOKED, _RESOURCES = Reason.PRIORITY, Reason.BOOKED, Reason.RESOURCES

# One node: (longest claim, longest ignoring reservations, open-ended fits, open-ended fits
# ignoring reservations).
_NodeFit = tuple[Instant, Instant, bool, bool]


class NowFit:
    """What could start now (see the module docstring). ``limit``: the longest claim that
    fits; ``limit_free``: the same if reservations did not count; ``open``/``open_free``:
    the same for an open-ended claim; ``capacity``: enough free GPUs at all."""

    __slots__ = (
        "capacity",
        "limit",
        "limit_free",
        "log_pos",
        "nodes",
        "open",
        "open_free",
        "want",
    )

    def __init__(self, cluster: Cluster, want: Want) -> None:
        self.want = want  # the booking owner it is for (length ignored)
        self.log_pos = len(cluster.log)
        self.nodes: dict[int, _NodeFit] = {}
        self.limit = self.limit_free = _NONE
        self.open = self.open_free = self.capacity = False

    def fits(self, length: int | None) -> bool:
        return self.open if length is None else length <= self.limit

    def reason(self, length: int | None) -> Reason:
        """Why a claim of ``length`` does not fit now."""
        free_fit = self.open_free if length is None else length <= self.limit_free
        if free_fit:
            return _PRIORITY
        return _BOOKED if self.capacity else _RESOURCES

    def refresh(self, cluster: Cluster, shape: Shape) -> None:
        """Catch up with the change log: recompute the nodes that changed."""
        log = cluster.log
        if self.log_pos == len(log):
            return
        nodes = self.nodes
        changed = {n for n in log[self.log_pos :] if n in nodes}
        self.log_pos = len(log)
        if not changed:
            return
        for n in changed:
            node = _node_fit(cluster, shape.nodes[n], shape.per, self.want)
            if node is None:
                del nodes[n]
            else:
                nodes[n] = node
        self.summarise(shape.count)

    def summarise(self, m: int) -> None:
        values = self.nodes.values()
        self.capacity = len(values) >= m
        self.limit = _mth([v[0] for v in values], m)
        self.limit_free = _mth([v[1] for v in values], m)
        self.open = sum(v[2] for v in values) >= m
        self.open_free = sum(v[3] for v in values) >= m


def _gpu_clearance(cluster: Cluster, g: int, want: Want) -> tuple[Instant, Instant]:
    """(seconds from now until the first foreign booking, until the first reservation) on a
    GPU free now; 0 when one is active now."""
    now = cluster.now
    booked = reserved = OPEN_END
    for span in cluster.bookings[g]:
        if want.foreign(span.user, span.id):
            booked = max(span.start - now, 0)
            break
    held = cluster.reservations[g]
    if held:
        reserved = max(held[0][0] - now, 0)
    return booked, reserved


def _node_fit(cluster: Cluster, gpus: tuple[int, ...], per: int, want: Want) -> _NodeFit | None:
    """One node's values, or ``None`` without ``per`` free GPUs."""
    now, busy = cluster.now, cluster.busy
    pairs = [_gpu_clearance(cluster, g, want) for g in gpus if busy[g] <= now]
    if len(pairs) < per:
        return None
    full = sorted([min(b, r) for b, r in pairs], reverse=True)[per - 1]
    free = sorted([b for b, _ in pairs], reverse=True)[per - 1]
    open_full = sum(1 for b, r in pairs if b > 0 and r >= OPEN_END) >= per
    open_free = sum(1 for b, _ in pairs if b > 0) >= per
    return full, free, open_full, open_free


def _mth(values: list[Instant], m: int) -> Instant:
    """The m-th largest value (a multi-node job needs ``m`` distinct nodes), or none."""
    if len(values) < m:
        return _NONE
    if m == 1:
        return max(values)
    return sorted(values, reverse=True)[m - 1]


def now_fit(cluster: Cluster, shape: Shape, want: Want) -> NowFit:
    """Summarise what a job of ``shape`` (owning ``want.user``'s bookings) could start with
    now. ``want.length`` is ignored: the summary covers every claim length."""
    fit = NowFit(cluster, want)
    for _, n in nodes_by_fit(cluster, shape):
        node = _node_fit(cluster, shape.nodes[n], shape.per, want)
        if node is not None:
            fit.nodes[n] = node
    fit.summarise(shape.count)
    return fit


def now_fit_for_owner(
    cluster: Cluster, shape: Shape, want: Want, anyone: NowFit, owned: Iterable[int]
) -> NowFit:
    """``now_fit`` for a user who owns bookings on the ``owned`` nodes, derived from the
    (current) summary for a user who owns none: only those nodes can differ."""
    fit = NowFit(cluster, want)
    fit.nodes = dict(anyone.nodes)
    for n in owned:
        if n in fit.nodes:
            node = _node_fit(cluster, shape.nodes[n], shape.per, want)
            if node is not None:
                fit.nodes[n] = node
    fit.summarise(shape.count)
    return fit
