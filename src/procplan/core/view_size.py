"""How many bytes a calendar answer will take, known before it is built.

An availability payload grows with nodes × GPUs × hours, and a booking is repeated in every
slot it covers: 1,000 copies of one node id once asked for a 517 MB answer. The services
compare these estimates with the configured answer cap and refuse the request (a 400 that
says how to narrow it) before spending the memory.

Each estimate is an upper bound of the compact JSON the views produce for ordinary data
(within 10–30 % of it in ``tests/core/test_view_size.py``), computed in one tight pass over the
bookings in the window: it must cost a small fraction of the view it guards (about a tenth of
a cold year of day views). Labels count one byte per character when ASCII, four otherwise (the
most UTF-8 needs); a node's GPU ids are costed at its longest id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from procplan.core.model import Booking, BookingStatus, Node
from procplan.core.timeutil import DAY, HOUR, Instant

ISO = 27  # a quoted ``YYYY-MM-DDTHH:MM:SS+00:00``
_ACTIVE = BookingStatus.ACTIVE
_B = 150 + 2 * ISO  # ProcPlan's booking object ``B`` without its label and GPU ids
_FREE_HOUR = 40 + 2 * ISO  # a free hour slot
_BOOKED_HOUR = 45 + 2 * ISO  # a booked hour slot, without its ``B``
_HOUR = 150 + 2 * ISO  # an ``hours[]`` entry without its ids and bookings
_GRID_HOUR = 20 + 2 * ISO
_DAY_SLOT = 110 + 2 * ISO  # a day slot without its bookings
_DAY_ENTRY = 60 + 2 * ISO  # a booking's extra keys in a day slot (hours, overlap)
_GRID_DAY = 40 + 3 * ISO
_CLAIM = 130 + 2 * ISO  # a native calendar claim without its user and label


def _id_cost(node: Node) -> int:
    """Bytes of one GPU id of ``node`` in a JSON list, at most."""
    return max((len(g.id) for g in node.gpus), default=8) + 3


def _node(node: Node) -> int:
    """The node part of ``wire.calendar``'s answer and one grid row header per GPU."""
    gpus = sum(70 + len(g.id) + len(g.kind) for g in node.gpus)
    return 200 + len(node.id) + len(node.name) + 2 * gpus


def _buckets(start: Instant, end: Instant, step: int) -> int:
    return max(0, -(-(end - start) // step))


def hour_view_bytes(node: Node, start: Instant, end: Instant, bookings: Iterable[Booking]) -> int:
    """``calendar.hour_view``: per hour an entry with every GPU id, a grid hour and a slot per
    GPU; a booking repeats in each hour it overlaps and, when active, in its GPUs' slots."""
    id_cost, gpus = _id_cost(node), len(node.gpus)
    per_hour = _HOUR + gpus * id_cost + _GRID_HOUR + gpus * _FREE_HOUR
    total = _node(node) + _buckets(start, end, HOUR) * per_hour
    for b in bookings:
        s, e = b.start, b.end
        lo = s if s > start else start
        hi = e if e < end else end
        if hi > lo:
            n, label = len(b.gpu_ids), b.label
            copies = 1 + n if b.status is _ACTIVE else 1
            size = _B + (len(label) if label.isascii() else 4 * len(label)) + n * id_cost
            touched = (hi - 1 - start) // HOUR - (lo - start) // HOUR + 1
            total += touched * copies * (size + _BOOKED_HOUR)
    return total


def day_view_bytes(node: Node, start: Instant, end: Instant, bookings: Iterable[Booking]) -> int:
    """``calendar.day_view``: per day a grid day and a slot per GPU; an active booking repeats,
    with its overlap, in each day it touches, once per GPU."""
    id_cost, gpus = _id_cost(node), len(node.gpus)
    total = _node(node) + _buckets(start, end, DAY) * (_GRID_DAY + gpus * _DAY_SLOT)
    for b in bookings:
        if b.status is _ACTIVE:
            s, e = b.start, b.end
            lo = s if s > start else start
            hi = e if e < end else end
            if hi > lo:
                n, label = len(b.gpu_ids), b.label
                size = _B + (len(label) if label.isascii() else 4 * len(label)) + n * id_cost
                size += _DAY_ENTRY
                touched = (hi - 1 - start) // DAY - (lo - start) // DAY + 1
                total += touched * n * size
    return total


def claim_rows_bytes(
    nodes: Sequence[Node], start: Instant, end: Instant, bookings: Iterable[Booking]
) -> int:
    """``calendar.claim_rows``: per GPU a row, per booking one claim object in each of its
    GPUs' rows."""
    total = 100 + sum(_node(node) for node in nodes)
    for b in bookings:
        if b.start < end and b.end > start:
            text = b.user + b.label
            total += len(b.gpu_ids) * (_CLAIM + (len(text) if text.isascii() else 4 * len(text)))
    return total
