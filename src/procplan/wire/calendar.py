"""Calendar answers: ProcPlan's hour-granularity availability (byte-exact, COMPAT.md §1) and
the native ``/api/v1/calendar`` claim rows; the day granularity is ``wire.dayview``
(re-exported here, so one module serves every calendar answer).

ProcPlan computed availability as hours × bookings; here the work is the bookings in the window
plus the output size. Each booking's public object ``B`` is built once per call, boundaries are
formatted once, and a booking jumps straight to the hours it touches. Answers are read-only
trees: sub-objects (free cells, ``B`` objects) are shared between places. Serialize them; do
not mutate them. Key order follows COMPAT.md, because JSON bytes depend on it.

Services hand the routes values (``core.views``): ``availability_grids`` renders an
``Availability`` (``hour_views``/``day_views``: the window's grid is built once for all its
nodes), ``claims_calendar`` a ``LedgerWindow``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from procplan.core.calendar import gpu_positions, group_by_node, hour_range, in_window
from procplan.core.model import Booking, BookingStatus, Node
from procplan.core.timeutil import HOUR, Instant
from procplan.core.views import Availability, LedgerWindow
from procplan.wire.base import ISO, Json, boundaries
from procplan.wire.bookings import calendar_claims, procplan_bookings
from procplan.wire.compat import procplan_node
from procplan.wire.dayview import day_view, day_views

__all__ = [
    "availability_grids",
    "claim_rows",
    "claims_calendar",
    "day_view",
    "day_views",
    "hour_view",
    "hour_views",
]

_ACTIVE = BookingStatus.ACTIVE
_CANCELLED = BookingStatus.CANCELLED

Lane = list[tuple[Booking, Json]]


def _lanes(node: Node, items: Sequence[Booking], published: Sequence[Json]) -> list[Lane]:
    """Active bookings per GPU of ``node`` (config order), in booking order."""
    position = gpu_positions(node)
    lanes: list[Lane] = [[] for _ in node.gpus]
    for b, pb in zip(items, published, strict=True):
        if b.status is _ACTIVE:
            for gpu_id in b.gpu_ids:
                k = position.get(gpu_id)
                if k is not None:
                    lanes[k].append((b, pb))
    return lanes


def _owners(lane: Lane, start: Instant, end: Instant, count: int) -> list[Json | None] | None:
    """Per hour, the active booking shown on the GPU (``None`` = free; ``None`` overall when the
    GPU is free all window). Highest priority wins, then earliest start: the lane is in
    (start, id) order, so only a strictly higher priority replaces."""
    if not lane:
        return None
    owners: list[Json | None] = [None] * count
    ranks = [0] * count
    for b, pb in lane:
        rank = int(b.priority)
        for i in hour_range(b, start, end):
            if rank > ranks[i]:
                ranks[i] = rank
                owners[i] = pb
    return owners


@dataclass(frozen=True, slots=True)
class _HourGrid:
    """A window's hour boundaries (ISO), ``grid.hours`` and free slots: built once per call and
    shared by every node of it (``hour_views``); not cached across calls, so a caller that
    mutated one answer cannot corrupt the next."""

    start: Instant
    end: Instant
    isos: list[str]
    hours: list[Json]
    free: list[Json]


def _hour_grid(start: Instant, end: Instant) -> _HourGrid:
    isos = boundaries(start, end, HOUR)[1]
    count = len(isos) - 1
    return _HourGrid(
        start=start,
        end=end,
        isos=isos,
        hours=[{"start": isos[i], "end": isos[i + 1]} for i in range(count)],
        free=[{"start": isos[i], "end": isos[i + 1], "status": "free"} for i in range(count)],
    )


def _grid_rows(
    node: Node, owners: Sequence[list[Json | None] | None], grid: _HourGrid
) -> list[Json]:
    isos = grid.isos
    rows: list[Json] = []
    for gpu, owned in zip(node.gpus, owners, strict=True):
        slots: list[Json] = grid.free[:]
        for i, shown in enumerate(owned or ()):
            if shown is not None:
                slots[i] = {
                    "start": isos[i],
                    "end": isos[i + 1],
                    "status": "booked",
                    "booking": shown,
                }
        rows.append({"gpu": {"id": gpu.id, "kind": gpu.kind}, "hour_slots": slots})
    return rows


def _hour_entries(
    node: Node,
    owners: Sequence[list[Json | None] | None],
    isos: Sequence[str],
    listed: Sequence[list[Json]],
) -> list[Json]:
    gpu_ids = [gpu.id for gpu in node.gpus]
    busy = [(g, owned) for g, owned in zip(gpu_ids, owners, strict=True) if owned is not None]
    hours: list[Json] = []
    for i, bookings in enumerate(listed):
        used = [g for g, owned in busy if owned[i] is not None]
        available = [g for g in gpu_ids if g not in used] if used else gpu_ids[:]
        hours.append(
            {
                "start": isos[i],
                "end": isos[i + 1],
                "available_gpu_ids": available,
                "used_gpu_ids": used,
                "available_count": len(available),
                "used_count": len(used),
                "bookings": bookings,
            }
        )
    return hours


def _hour_payload(node: Node, grid: _HourGrid, bookings: Iterable[Booking]) -> Json:
    start, end, isos = grid.start, grid.end, grid.isos
    count = len(isos) - 1
    items = in_window(bookings, start, end)
    published = procplan_bookings(items)
    listed: list[list[Json]] = [[] for _ in range(count)]
    for b, pb in zip(items, published, strict=True):
        for i in hour_range(b, start, end):
            listed[i].append(pb)
    owners = [_owners(lane, start, end, count) for lane in _lanes(node, items, published)]
    return {
        "node": procplan_node(node),
        "start": isos[0],
        "end": isos[-1],
        "hours": _hour_entries(node, owners, isos, listed),
        "grid": {"hours": grid.hours, "rows": _grid_rows(node, owners, grid)},
    }


def hour_view(node: Node, start: Instant, end: Instant, bookings: Iterable[Booking]) -> Json:
    """``GET /api/availability?granularity=hour`` for one node.

    One entry per hour (the last cut at ``end``). ``hours[].bookings`` lists every booking
    overlapping the hour in any status, by (start, id); used/available ids and grid slots count
    only active bookings; GPU lists and rows follow config order. ``bookings``: the node's
    bookings in any status; those outside the window are ignored.
    """
    return _hour_payload(node, _hour_grid(start, end), bookings)


def hour_views(
    nodes: Sequence[Node], start: Instant, end: Instant, bookings: Iterable[Booking]
) -> list[Json]:
    """``hour_view`` for several nodes (``/api/availability_bulk``), in ``nodes`` order;
    ``bookings`` may mix nodes. The window's grid is built once for the call."""
    grid = _hour_grid(start, end)
    by_node = group_by_node(nodes, bookings)
    return [_hour_payload(node, grid, by_node[node.id]) for node in nodes]


def claim_rows(
    nodes: Sequence[Node], start: Instant, end: Instant, bookings: Iterable[Booking]
) -> Json:
    """``GET /api/v1/calendar``: per GPU, one claim object per booking (not per cell).

    Active and completed bookings overlapping the window, with their real (unclipped) start and
    end, by (start, booking id); cancelled ones are omitted, as are GPUs outside ``nodes``.
    A multi-GPU booking's claim object is shared by its GPUs' lists.
    """
    lanes: dict[str, list[Json]] = {gpu.id: [] for node in nodes for gpu in node.gpus}
    items = [b for b in in_window(bookings, start, end) if b.status is not _CANCELLED]
    for b, claim in zip(items, calendar_claims(items), strict=True):
        for gpu_id in b.gpu_ids:
            lane = lanes.get(gpu_id)
            if lane is not None:
                lane.append(claim)
    return {
        "start": ISO(start),
        "end": ISO(end),
        "nodes": [
            {
                "id": node.id,
                "name": node.name,
                "gpus": [
                    {"id": gpu.id, "kind": gpu.kind, "index": gpu.index, "claims": lanes[gpu.id]}
                    for gpu in node.gpus
                ],
            }
            for node in nodes
        ],
    }


def availability_grids(view: Availability) -> list[Json]:
    """``GET /api/availability`` (one node) and ``POST /api/availability_bulk``: one ProcPlan
    grid per node of the window, in its order, at the view's granularity."""
    window = view.window
    views = day_views if view.granularity == "day" else hour_views
    return views(window.nodes, window.start, window.end, window.bookings)


def claims_calendar(window: LedgerWindow) -> Json:
    """``GET /api/v1/calendar`` for ``window`` (``claim_rows``)."""
    return claim_rows(window.nodes, window.start, window.end, window.bookings)
