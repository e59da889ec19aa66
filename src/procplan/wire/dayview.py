"""ProcPlan's day-granularity availability (``granularity=day``), byte-exact (COMPAT.md §1).

This is the heaviest payload (a year for a whole cluster is tens of thousands of objects), so
the work is the bookings in the window plus the output, never buckets × bookings:

- bucket boundaries are formatted once; an overlap edge is either the booking's own edge or a
  bucket boundary, so no timestamp is formatted per bucket;
- each booking's ``B`` (``wire.bookings``) and entries are built once and shared by all its
  GPUs;
- a booking jumps straight to the buckets it touches (integer division);
- free cells (and the ``days`` list) are prebuilt per window and shared by every row, and by
  every node of a ``day_views`` call.

The answer is a read-only tree (shared sub-objects): serialize it, do not mutate it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from procplan.core.calendar import gpu_positions, group_by_node, in_window
from procplan.core.model import Booking, Node
from procplan.core.timeutil import DAY, HOUR, Instant
from procplan.wire.base import PRIORITY_RANKS, Json, boundaries
from procplan.wire.bookings import procplan_bookings
from procplan.wire.compat import procplan_node

__all__ = ["day_view", "day_views"]

Placed = list[tuple[int, Json]]  # (bucket index, entry) for one booking


class _DayGrid:
    """The buckets of one window: boundaries, ISO strings, hour totals, the ``days`` list and
    the free cells. Never changed once built, so one grid serves every node of one call
    (``day_views``). It is not cached across calls: a caller that mutated one payload must not
    corrupt the next one."""

    __slots__ = ("cuts", "days", "end", "free", "isos", "start", "totals")

    def __init__(self, start: Instant, end: Instant) -> None:
        self.start, self.end = start, end
        self.cuts, self.isos = boundaries(start, end, DAY)
        isos, cuts = self.isos, self.cuts
        self.totals = [(cuts[i + 1] - cuts[i]) // HOUR for i in range(len(cuts) - 1)]
        empty: list[Json] = []
        self.free: list[Json] = [
            {
                "start": isos[i],
                "end": isos[i + 1],
                "status": "free",
                "booked_hours": 0,
                "total_hours": total,
                "priority": None,
                "bookings": empty,
            }
            for i, total in enumerate(self.totals)
        ]
        self.days: list[Json] = [
            {"key": isos[i][:10], "start": isos[i], "end": isos[i + 1]}
            for i in range(len(self.totals))
        ]

    def spread(self, entry: Json, lo: Instant, hi: Instant) -> Placed:
        """Copies of ``entry`` for each bucket that ``[lo, hi)`` (a booking clipped to the
        window) overlaps by at least one whole hour, with that bucket's hours and overlap.

        ``entry`` carries the whole clipped overlap ``[lo, hi)``; each bucket's overlap edge is
        either that edge or a bucket boundary, so no timestamp is formatted here.
        """
        start, cuts, isos = self.start, self.cuts, self.isos
        lo_iso, hi_iso = entry["overlap_start"], entry["overlap_end"]
        out: Placed = []
        for i in range((lo - start) // DAY, (hi - 1 - start) // DAY + 1):
            o_lo, o_lo_iso = (lo, lo_iso) if lo >= cuts[i] else (cuts[i], isos[i])
            o_hi, o_hi_iso = (hi, hi_iso) if hi <= cuts[i + 1] else (cuts[i + 1], isos[i + 1])
            hours = (o_hi - o_lo) // HOUR
            if hours:
                copy = entry.copy()
                copy["hours"] = hours
                copy["overlap_start"] = o_lo_iso
                copy["overlap_end"] = o_hi_iso
                out.append((i, copy))
        return out


def _fill(grid: _DayGrid, items: Sequence[Booking], rows: list[list[Json]], node: Node) -> None:
    """Put each booking's entries ``B + {hours, overlap_start, overlap_end}`` into the cells of
    its GPUs; buckets it overlaps by less than a whole hour get none. An entry is built once
    and shared by all the booking's GPUs.

    The hot loop of the year view: locals only, no comprehension (its closure would slow every
    local here), and an inline path for the common booking that lies within one bucket.
    """
    start, end, isos = grid.start, grid.end, grid.isos
    free, totals, ranks = grid.free, grid.totals, PRIORITY_RANKS
    position = gpu_positions(node)
    for b, pb in zip(items, procplan_bookings(items), strict=True):
        s, e = b.start, b.end
        lo = s if s > start else start
        hi = e if e < end else end
        first = (lo - start) // DAY
        single = (hi - 1 - start) // DAY == first  # then the overlap is exactly [lo, hi)
        hours = (hi - lo) // HOUR
        if single and not hours:
            continue
        # ``pb`` is this call's own: it becomes the entry (B's keys, then the overlap's)
        pb["hours"] = hours
        pb["overlap_start"] = pb["start"] if lo == s else isos[0]
        pb["overlap_end"] = pb["end"] if hi == e else isos[-1]
        placed = [(first, pb)] if single else grid.spread(pb, lo, hi)
        for gpu_id in b.gpu_ids:
            k = position.get(gpu_id)
            if k is None:
                continue
            slots = rows[k]
            for i, entry in placed:
                # A booked cell is created on its first entry and owned by that row, so later
                # entries update it in place; free cells stay shared (inline: the year
                # view's hottest line, ~15,000 times per call).
                cell, got, total = slots[i], entry["hours"], totals[i]
                if cell is free[i]:
                    slots[i] = {
                        "start": cell["start"],
                        "end": cell["end"],
                        "status": "occupied" if got >= total else "partial",
                        "booked_hours": got,
                        "total_hours": total,
                        "priority": entry["priority"],
                        "bookings": [entry],
                    }
                    continue
                cell["bookings"].append(entry)
                cell["booked_hours"] += got
                if cell["booked_hours"] >= total:
                    cell["status"] = "occupied"
                if ranks[entry["priority"]] > ranks[cell["priority"]]:
                    cell["priority"] = entry["priority"]


def _view(node: Node, grid: _DayGrid, bookings: Iterable[Booking]) -> Json:
    items = in_window(bookings, grid.start, grid.end, active_only=True)
    cells = [grid.free[:] for _ in node.gpus]
    _fill(grid, items, cells, node)
    isos = grid.isos
    rows = [
        {"gpu": {"id": gpu.id, "kind": gpu.kind}, "day_slots": slots}
        for gpu, slots in zip(node.gpus, cells, strict=True)
    ]
    return {
        "node": procplan_node(node),
        "start": isos[0],
        "end": isos[-1],
        "hours": [],
        "grid": {"hours": [], "days": grid.days, "rows": rows},
    }


def day_view(node: Node, start: Instant, end: Instant, bookings: Iterable[Booking]) -> Json:
    """``GET /api/availability?granularity=day`` for one node.

    Buckets are consecutive 24 h windows from ``start`` (the last one cut at ``end``); ``key``
    is the UTC date of the bucket start. Only active bookings count: per GPU and bucket, each
    contributes its whole overlapping hours (entries with 0 are left out); ``priority`` is the
    highest among the entries. ``bookings``: the node's bookings in any status; those outside
    the window are ignored.
    """
    return _view(node, _DayGrid(start, end), bookings)


def day_views(
    nodes: Sequence[Node], start: Instant, end: Instant, bookings: Iterable[Booking]
) -> list[Json]:
    """``day_view`` for several nodes (``/api/availability_bulk``), in ``nodes`` order.

    ``bookings`` may mix nodes (grouped by ``node_id`` here). The window's grid (boundaries,
    free cells, ``days``) is built once and shared by all the payloads of this call.
    """
    by_node = group_by_node(nodes, bookings)
    grid = _DayGrid(start, end)
    return [_view(node, grid, by_node[node.id]) for node in nodes]
