"""Which bookings a calendar window sees, and where they fall in it: the domain half of the
calendar views. Their JSON (ProcPlan's hour and day grids, the native claim rows) is
``procplan.wire.calendar`` and ``procplan.wire.dayview``; the answer-size estimates that guard
them are ``view_size``.

Every view lists bookings in the same order, (start, id), and places them by integer division
rather than by scanning buckets, so a view costs the bookings in its window plus its output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter

from procplan.core.model import Booking, BookingStatus, Node
from procplan.core.timeutil import HOUR, Instant

__all__ = ["gpu_positions", "group_by_node", "hour_range", "in_window"]

_ACTIVE = BookingStatus.ACTIVE
_BY_ID = attrgetter("id")
_BY_START = attrgetter("start")


def in_window(
    bookings: Iterable[Booking], start: Instant, end: Instant, *, active_only: bool = False
) -> list[Booking]:
    """Non-empty bookings overlapping ``[start, end)``, by (start, id): the order every view
    lists them in. Two stable single-key sorts beat one sort on tuple keys (and are linear
    when the store already returns them in that order)."""
    found = [
        b
        for b in bookings
        if b.start < end
        and b.end > start
        and b.end > b.start
        and (b.status is _ACTIVE or not active_only)
    ]
    found.sort(key=_BY_ID)
    found.sort(key=_BY_START)
    return found


def hour_range(b: Booking, start: Instant, end: Instant) -> range:
    """Indexes of the hours of ``[start, end)`` that ``b`` (overlapping the window) touches."""
    first = (max(b.start, start) - start) // HOUR
    last = (min(b.end, end) - 1 - start) // HOUR
    return range(first, last + 1)


def gpu_positions(node: Node) -> dict[str, int]:
    """GPU id → row index (config order). Bookings may name GPUs no longer in the node
    (retired by a config reload); views skip those."""
    return {gpu.id: k for k, gpu in enumerate(node.gpus)}


def group_by_node(nodes: Sequence[Node], bookings: Iterable[Booking]) -> dict[str, list[Booking]]:
    """Bookings per node id of ``nodes`` (others dropped), keeping their order."""
    by_node: dict[str, list[Booking]] = {node.id: [] for node in nodes}
    for b in bookings:
        lane = by_node.get(b.node_id)
        if lane is not None:
            lane.append(b)
    return by_node
