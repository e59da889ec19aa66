"""How many bytes a calendar answer will take, known before it is built.

An availability payload grows with nodes × GPUs × hours, and a booking is repeated in every
slot it covers: 1,000 copies of one node id once asked for a 517 MB answer. The services
compare these estimates with the configured answer cap and refuse the request (a 400 that
says how to narrow it) before spending the memory. Each estimate is an upper bound of the
compact JSON the views produce (a few percent above it for ordinary data; strings count four
bytes per character, the most UTF-8 needs), computed from the bookings in the window in time
proportional to their number, not to the answer's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from procplan.core.model import Booking, BookingStatus, Node
from procplan.core.timeutil import DAY, HOUR, Instant

ISO = 27  # a quoted ``YYYY-MM-DDTHH:MM:SS+00:00``
_INT = 21  # the widest integer, as text


def _text(value: str) -> int:
    return 4 * len(value) + 2


def _node(node: Node) -> int:
    """``node_payload``: ids, names and kinds of the node and its GPUs."""
    gpus = sum(40 + _text(g.id) + _text(g.kind) for g in node.gpus)
    return 80 + _text(node.id) + _text(node.name) + gpus


def _booking(b: Booking) -> int:
    """ProcPlan's public booking object ``B``."""
    return 130 + _INT + _text(b.label) + 2 * ISO + sum(_text(g) + 1 for g in b.gpu_ids)


def _overlap(b: Booking, start: Instant, end: Instant, step: int) -> int:
    """How many ``step``-long buckets of ``[start, end)`` the booking touches (at most)."""
    lo, hi = max(b.start, start), min(b.end, end)
    return 0 if hi <= lo else (hi - lo) // step + 2


def _buckets(start: Instant, end: Instant, step: int) -> int:
    return max(0, -(-(end - start) // step))


def hour_view_bytes(node: Node, start: Instant, end: Instant, bookings: Iterable[Booking]) -> int:
    """``calendar.hour_view``: per hour an entry with every GPU id, a grid hour, and per GPU
    a slot; a booking repeats in each hour it overlaps and in each of its GPUs' slots."""
    hours = _buckets(start, end, HOUR)
    ids = sum(_text(g.id) + 1 for g in node.gpus)
    per_hour = (150 + 2 * ISO + ids) + (30 + 2 * ISO) + len(node.gpus) * (45 + 2 * ISO)
    total = 200 + _node(node) + hours * per_hour + sum(60 + _text(g.id) for g in node.gpus)
    for b in bookings:
        covered = _overlap(b, start, end, HOUR)
        if covered:
            copies = 1 + (len(b.gpu_ids) if b.status is BookingStatus.ACTIVE else 0)
            total += covered * copies * (_booking(b) + 12)
    return total


def day_view_bytes(node: Node, start: Instant, end: Instant, bookings: Iterable[Booking]) -> int:
    """``calendar.day_view``: per day a grid day and per GPU a slot; an active booking repeats
    (with its overlap) in each day it touches, once per GPU."""
    days = _buckets(start, end, DAY)
    per_day = (40 + 3 * ISO) + len(node.gpus) * (150 + 2 * ISO)
    total = 200 + _node(node) + days * per_day + sum(60 + _text(g.id) for g in node.gpus)
    for b in bookings:
        if b.status is BookingStatus.ACTIVE:
            covered = _overlap(b, start, end, DAY)
            total += covered * len(b.gpu_ids) * (_booking(b) + 60 + 2 * ISO)
    return total


def claim_rows_bytes(
    nodes: Sequence[Node], start: Instant, end: Instant, bookings: Iterable[Booking]
) -> int:
    """``calendar.claim_rows``: per GPU a row, per booking one claim object in each of its
    GPUs' rows."""
    total = 60 + 2 * ISO + sum(_node(node) + 60 * len(node.gpus) for node in nodes)
    for b in bookings:
        if b.start < end and b.end > start:
            claim = 120 + _INT + 2 * ISO + _text(b.user) + _text(b.label)
            total += claim * len(b.gpu_ids)
    return total
