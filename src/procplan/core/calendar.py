"""Calendar views computed from booking intervals: ProcPlan's availability payloads
(byte-exact, COMPAT.md section 1) and the native ``/api/v1/calendar`` claim rows.

ProcPlan computed availability as hours × bookings; here the work is the bookings in the window
plus the output size. Each booking's public object ``B`` is built once per call, boundaries are
formatted once, and a booking jumps straight to the hours it touches. Payloads are read-only
trees: sub-objects (free cells, ``B`` objects) are shared between places. Serialize them; do
not mutate them. Key order inside every object follows COMPAT.md, because JSON bytes depend
on it.

The day view lives in ``dayview`` (it is the heavy one) and is re-exported here. For
``/api/availability_bulk`` use ``hour_views``/``day_views``: they build the window's grid once
for all nodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from procplan.core.dayview import day_view, day_views
from procplan.core.model import Booking, Node
from procplan.core.payloads import (
    ACTIVE,
    CANCELLED,
    ISO_MEMO,
    PRIORITY_LABELS,
    STATUS_WIRE,
    Json,
    boundaries,
    gpu_positions,
    group_by_node,
    in_window,
    iso,
    node_payload,
    public_booking,
    publish,
)
from procplan.core.timeutil import HOUR, Instant

__all__ = [
    "claim_rows",
    "day_view",
    "day_views",
    "hour_view",
    "hour_views",
    "node_payload",
    "public_booking",
]

Lane = list[tuple[Booking, Json]]


def _hour_range(b: Booking, start: Instant, end: Instant) -> range:
    """Indexes of the hours of ``[start, end)`` that ``b`` (overlapping the window) touches."""
    first = (max(b.start, start) - start) // HOUR
    last = (min(b.end, end) - 1 - start) // HOUR
    return range(first, last + 1)


def _lanes(node: Node, items: Sequence[Booking], published: Sequence[Json]) -> list[Lane]:
    """Active bookings per GPU of ``node`` (config order), in booking order."""
    position = gpu_positions(node)
    lanes: list[Lane] = [[] for _ in node.gpus]
    for b, pb in zip(items, published, strict=True):
        if b.status is ACTIVE:
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
        for i in _hour_range(b, start, end):
            if rank > ranks[i]:
                ranks[i] = rank
                owners[i] = pb
    return owners


@dataclass(frozen=True, slots=True)
class _HourGrid:
    """A window's hour boundaries (ISO), ``grid.hours`` and free slots: built once per call and
    shared by every node of it (``hour_views``); not cached across calls, so a caller that
    mutated one payload cannot corrupt the next."""

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
    published = publish(items)
    listed: list[list[Json]] = [[] for _ in range(count)]
    for b, pb in zip(items, published, strict=True):
        for i in _hour_range(b, start, end):
            listed[i].append(pb)
    owners = [_owners(lane, start, end, count) for lane in _lanes(node, items, published)]
    return {
        "node": node_payload(node),
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
    memo_get = ISO_MEMO.get
    for b in in_window(bookings, start, end):
        if b.status is CANCELLED:
            continue
        claim = {
            "booking_id": b.id,
            "start": memo_get(b.start) or iso(b.start),
            "end": memo_get(b.end) or iso(b.end),
            "user": b.user,
            "label": b.label,
            "priority": PRIORITY_LABELS[b.priority],
            "status": STATUS_WIRE[b.status],
        }
        for gpu_id in b.gpu_ids:
            lane = lanes.get(gpu_id)
            if lane is not None:
                lane.append(claim)
    return {
        "start": iso(start),
        "end": iso(end),
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
