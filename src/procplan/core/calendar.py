"""Availability payloads (ProcPlan's hour/day views, byte-exact) and the native calendar rows.

Why it is written this way: a year-long day view of a busy cluster is tens of thousands of
objects, and ProcPlan computed it as hours × bookings. Here the work is proportional to the
bookings in the window plus the output size:

- each booking's public object ``B`` and its ISO strings are built once per call;
- bucket boundaries are formatted once, and an overlap boundary is always either the booking's
  own start/end or a bucket boundary, so no timestamp is formatted inside the loops;
- a booking jumps straight to the buckets it touches (integer division), never scanning them;
- free cells are prebuilt per bucket and shared by every row.

The payloads are therefore read-only trees: sub-objects (free cells, ``B`` objects, their
``gpu_ids`` lists) may be shared between places. Serialize them; do not mutate them.

Key order inside every object follows COMPAT.md: JSON bytes depend on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from procplan.core.model import Booking, BookingStatus, Node
from procplan.core.timeutil import DAY, HOUR, Instant, to_iso

__all__ = ["claim_rows", "day_view", "hour_view", "node_payload", "public_booking"]

Json = dict[str, Any]

_ACTIVE = BookingStatus.ACTIVE
_CANCELLED = BookingStatus.CANCELLED
# Indexed by the Priority value (1..3); avoids the enum ``label`` property on hot paths.
_PRIORITY_LABELS: tuple[str | None, ...] = (None, "low", "medium", "high")
_STATUS_WIRE: dict[str, str] = {status: status.value for status in BookingStatus}
_BY_ID = attrgetter("id")
_BY_START = attrgetter("start")


def public_booking(b: Booking) -> Json:
    """ProcPlan's public booking object ``B`` (``user_label`` is the booking's label)."""
    return {
        "id": b.id,
        "user_label": b.label,
        "start": to_iso(b.start),
        "end": to_iso(b.end),
        "status": _STATUS_WIRE[b.status],
        "gpu_ids": list(b.gpu_ids),
        "priority": _PRIORITY_LABELS[b.priority],
    }


def node_payload(node: Node) -> Json:
    """The node object of ``/api/nodes`` and of every availability payload."""
    return {
        "id": node.id,
        "name": node.name,
        "gpu_count": len(node.gpus),
        "gpus": [{"id": gpu.id, "kind": gpu.kind} for gpu in node.gpus],
    }


def _in_window(bookings: Iterable[Booking], start: Instant, end: Instant) -> list[Booking]:
    """Bookings overlapping ``[start, end)``, by (start, id): the order every view lists them in.

    Two stable single-key sorts are cheaper than one sort on tuple keys.
    """
    found = [b for b in bookings if b.start < end and b.end > start and b.end > b.start]
    found.sort(key=_BY_ID)
    found.sort(key=_BY_START)
    return found


def _publish(items: Sequence[Booking]) -> list[Json]:
    """``public_booking`` for many bookings, memoising ISO strings (boundaries repeat a lot)."""
    memo: dict[Instant, str] = {}
    out: list[Json] = []
    append = out.append
    status_wire = _STATUS_WIRE
    labels = _PRIORITY_LABELS
    for b in items:
        s, e = b.start, b.end
        s_iso = memo.get(s)
        if s_iso is None:
            s_iso = memo[s] = to_iso(s)
        e_iso = memo.get(e)
        if e_iso is None:
            e_iso = memo[e] = to_iso(e)
        append(
            {
                "id": b.id,
                "user_label": b.label,
                "start": s_iso,
                "end": e_iso,
                "status": status_wire[b.status],
                "gpu_ids": list(b.gpu_ids),
                "priority": labels[b.priority],
            }
        )
    return out


def _boundaries(start: Instant, end: Instant, step: int) -> tuple[list[Instant], list[str]]:
    """Cut ``[start, end)`` into ``step``-long buckets (the last one cut at ``end``).

    Returns the n + 1 boundary instants and their ISO strings.
    """
    cuts = list(range(start, end, step))
    cuts.append(end)
    return cuts, [to_iso(t) for t in cuts]


def _per_gpu(
    node: Node, items: Sequence[Booking], published: Sequence[Json]
) -> list[list[tuple[Booking, Json]]]:
    """Active bookings per GPU of ``node`` (config order), keeping booking order.

    GPU ids that are not (or no longer) in the node are ignored.
    """
    position = {gpu.id: k for k, gpu in enumerate(node.gpus)}
    lanes: list[list[tuple[Booking, Json]]] = [[] for _ in node.gpus]
    for b, pb in zip(items, published, strict=True):
        if b.status is not _ACTIVE:
            continue
        for gpu_id in b.gpu_ids:
            k = position.get(gpu_id)
            if k is not None:
                lanes[k].append((b, pb))
    return lanes


# ---------------------------------------------------------------------------------- hour view


def _hour_owners(
    lane: Sequence[tuple[Booking, Json]], start: Instant, end: Instant, count: int
) -> list[Json | None]:
    """Per hour, the active booking shown on the GPU: highest priority, then earliest start
    (the lane is in (start, id) order, so only a strictly higher priority replaces)."""
    owners: list[Json | None] = [None] * count
    ranks = [0] * count
    for b, pb in lane:
        first = (max(b.start, start) - start) // HOUR
        last = (min(b.end, end) - 1 - start) // HOUR
        rank = int(b.priority)
        for i in range(first, last + 1):
            if rank > ranks[i]:
                ranks[i] = rank
                owners[i] = pb
    return owners


def hour_view(node: Node, start: Instant, end: Instant, bookings: Iterable[Booking]) -> Json:
    """``GET /api/availability?granularity=hour`` for one node.

    ``bookings``: the node's bookings in any status; those outside the window are ignored.
    """
    cuts, isos = _boundaries(start, end, HOUR)
    count = len(cuts) - 1
    items = _in_window(bookings, start, end)
    published = _publish(items)

    listed: list[list[Json]] = [[] for _ in range(count)]
    for b, pb in zip(items, published, strict=True):
        first = (max(b.start, start) - start) // HOUR
        last = (min(b.end, end) - 1 - start) // HOUR
        for i in range(first, last + 1):
            listed[i].append(pb)

    gpu_ids = [gpu.id for gpu in node.gpus]
    lanes = _per_gpu(node, items, published)
    owners = [_hour_owners(lane, start, end, count) if lane else None for lane in lanes]
    free_slots = [{"start": isos[i], "end": isos[i + 1], "status": "free"} for i in range(count)]

    rows: list[Json] = []
    for gpu, owned in zip(node.gpus, owners, strict=True):
        slots: list[Json] = free_slots[:]
        if owned is not None:
            for i, pb in enumerate(owned):
                if pb is not None:
                    slots[i] = {
                        "start": isos[i], "end": isos[i + 1], "status": "booked", "booking": pb
                    }
        rows.append({"gpu": {"id": gpu.id, "kind": gpu.kind}, "hour_slots": slots})

    busy = [(gpu_id, owned) for gpu_id, owned in zip(gpu_ids, owners, strict=True) if owned]
    hours: list[Json] = []
    for i in range(count):
        used = [gpu_id for gpu_id, owned in busy if owned[i] is not None]
        available = [gpu_id for gpu_id in gpu_ids if gpu_id not in used] if used else gpu_ids[:]
        hours.append(
            {
                "start": isos[i],
                "end": isos[i + 1],
                "available_gpu_ids": available,
                "used_gpu_ids": used,
                "available_count": len(available),
                "used_count": len(used),
                "bookings": listed[i],
            }
        )
    return {
        "node": node_payload(node),
        "start": isos[0],
        "end": isos[-1],
        "hours": hours,
        "grid": {
            "hours": [{"start": isos[i], "end": isos[i + 1]} for i in range(count)],
            "rows": rows,
        },
    }


# ----------------------------------------------------------------------------------- day view


def _day_slots(
    lane: Sequence[tuple[Booking, Json]],
    cuts: Sequence[Instant],
    isos: Sequence[str],
    totals: Sequence[int],
    free_slots: Sequence[Json],
) -> list[Json]:
    """One GPU's day cells: walk its bookings, touching only the buckets each one overlaps."""
    start, end = cuts[0], cuts[-1]
    acc: dict[int, list[Any]] = {}  # bucket -> [entries, booked hours, highest priority]
    for b, pb in lane:
        lo = b.start if b.start > start else start
        hi = b.end if b.end < end else end
        for i in range((lo - start) // DAY, (hi - 1 - start) // DAY + 1):
            b_lo, b_hi = cuts[i], cuts[i + 1]
            if lo >= b_lo:
                o_lo, o_lo_iso = lo, pb["start"] if lo == b.start else isos[i]
            else:
                o_lo, o_lo_iso = b_lo, isos[i]
            if hi <= b_hi:
                o_hi, o_hi_iso = hi, pb["end"] if hi == b.end else isos[i + 1]
            else:
                o_hi, o_hi_iso = b_hi, isos[i + 1]
            hours = (o_hi - o_lo) // HOUR
            if not hours:
                continue
            entry = pb.copy()
            entry["hours"] = hours
            entry["overlap_start"] = o_lo_iso
            entry["overlap_end"] = o_hi_iso
            cell = acc.get(i)
            if cell is None:
                acc[i] = [[entry], hours, b.priority]
            else:
                cell[0].append(entry)
                cell[1] += hours
                if b.priority > cell[2]:
                    cell[2] = b.priority
    slots = list(free_slots)
    labels = _PRIORITY_LABELS
    for i, (entries, booked, rank) in acc.items():
        total = totals[i]
        slots[i] = {
            "start": isos[i],
            "end": isos[i + 1],
            "status": "occupied" if booked >= total else "partial",
            "booked_hours": booked,
            "total_hours": total,
            "priority": labels[rank],
            "bookings": entries,
        }
    return slots


def day_view(node: Node, start: Instant, end: Instant, bookings: Iterable[Booking]) -> Json:
    """``GET /api/availability?granularity=day`` for one node.

    Buckets are 24 h from ``start`` (the last cut at ``end``); only active bookings count.
    """
    cuts, isos = _boundaries(start, end, DAY)
    count = len(cuts) - 1
    items = [b for b in _in_window(bookings, start, end) if b.status is _ACTIVE]
    lanes = _per_gpu(node, items, _publish(items))
    totals = [(cuts[i + 1] - cuts[i]) // HOUR for i in range(count)]
    empty: list[Json] = []
    free_slots = [
        {
            "start": isos[i],
            "end": isos[i + 1],
            "status": "free",
            "booked_hours": 0,
            "total_hours": totals[i],
            "priority": None,
            "bookings": empty,
        }
        for i in range(count)
    ]
    rows = [
        {
            "gpu": {"id": gpu.id, "kind": gpu.kind},
            "day_slots": _day_slots(lane, cuts, isos, totals, free_slots)
            if lane
            else free_slots[:],
        }
        for gpu, lane in zip(node.gpus, lanes, strict=True)
    ]
    days = [{"key": isos[i][:10], "start": isos[i], "end": isos[i + 1]} for i in range(count)]
    return {
        "node": node_payload(node),
        "start": isos[0],
        "end": isos[-1],
        "hours": [],
        "grid": {"hours": [], "days": days, "rows": rows},
    }


# ---------------------------------------------------------------------- native calendar rows


def claim_rows(
    nodes: Sequence[Node], start: Instant, end: Instant, bookings: Iterable[Booking]
) -> Json:
    """``GET /api/v1/calendar``: per GPU, one claim object per booking (not per cell).

    Active and completed bookings overlapping the window, unclipped, by (start, booking id);
    cancelled ones are omitted. Bookings of GPUs outside ``nodes`` are ignored.
    """
    lanes: dict[str, list[Json]] = {gpu.id: [] for node in nodes for gpu in node.gpus}
    memo: dict[Instant, str] = {}
    for b in _in_window(bookings, start, end):
        if b.status is _CANCELLED:
            continue
        s_iso = memo.get(b.start) or memo.setdefault(b.start, to_iso(b.start))
        e_iso = memo.get(b.end) or memo.setdefault(b.end, to_iso(b.end))
        claim: Json | None = None
        for gpu_id in b.gpu_ids:
            lane = lanes.get(gpu_id)
            if lane is None:
                continue
            if claim is None:
                claim = {
                    "booking_id": b.id,
                    "start": s_iso,
                    "end": e_iso,
                    "user": b.user,
                    "label": b.label,
                    "priority": _PRIORITY_LABELS[b.priority],
                    "status": _STATUS_WIRE[b.status],
                }
            lane.append(claim)
    return {
        "start": to_iso(start),
        "end": to_iso(end),
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
