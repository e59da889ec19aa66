"""Naive reference views for the calendar property tests: per hour (or day), per GPU, scan every
booking. Deliberately the slow, obvious reading of COMPAT.md; shares no code with the views
except the data model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from procplan.core.model import Booking, BookingStatus, Node

HOUR = 3600
DAY = 86400


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def b_obj(b: Booking) -> dict[str, Any]:
    return {
        "id": b.id,
        "user_label": b.label,
        "start": iso(b.start),
        "end": iso(b.end),
        "status": str(b.status.value),
        "gpu_ids": list(b.gpu_ids),
        "priority": b.priority.name.lower(),
    }


def node_obj(node: Node) -> dict[str, Any]:
    return {
        "id": node.id,
        "name": node.name,
        "gpu_count": len(node.gpus),
        "gpus": [{"id": g.id, "kind": g.kind} for g in node.gpus],
    }


def overlap(b: Booking, lo: int, hi: int) -> int:
    return max(0, min(b.end, hi) - max(b.start, lo))


def buckets(start: int, end: int, step: int) -> list[tuple[int, int]]:
    out = []
    t = start
    while t < end:
        out.append((t, min(t + step, end)))
        t += step
    return out


def naive_hour_view(
    node: Node, start: int, end: int, bookings: Sequence[Booking]
) -> dict[str, Any]:
    ordered = sorted(bookings, key=lambda b: (b.start, b.id))
    active = [b for b in ordered if b.status is BookingStatus.ACTIVE]
    hours = []
    for lo, hi in buckets(start, end, HOUR):
        used = [
            g.id for g in node.gpus if any(g.id in b.gpu_ids and overlap(b, lo, hi) for b in active)
        ]
        available = [g.id for g in node.gpus if g.id not in used]
        hours.append(
            {
                "start": iso(lo),
                "end": iso(hi),
                "available_gpu_ids": available,
                "used_gpu_ids": used,
                "available_count": len(available),
                "used_count": len(used),
                "bookings": [b_obj(b) for b in ordered if overlap(b, lo, hi)],
            }
        )
    rows = []
    for g in node.gpus:
        slots = []
        for lo, hi in buckets(start, end, HOUR):
            covering = [b for b in active if g.id in b.gpu_ids and overlap(b, lo, hi)]
            slot: dict[str, Any] = {"start": iso(lo), "end": iso(hi)}
            if covering:
                best = min(covering, key=lambda b: (-int(b.priority), b.start, b.id))
                slot["status"] = "booked"
                slot["booking"] = b_obj(best)
            else:
                slot["status"] = "free"
            slots.append(slot)
        rows.append({"gpu": {"id": g.id, "kind": g.kind}, "hour_slots": slots})
    return {
        "node": node_obj(node),
        "start": iso(start),
        "end": iso(end),
        "hours": hours,
        "grid": {
            "hours": [{"start": iso(lo), "end": iso(hi)} for lo, hi in buckets(start, end, HOUR)],
            "rows": rows,
        },
    }


def naive_day_view(node: Node, start: int, end: int, bookings: Sequence[Booking]) -> dict[str, Any]:
    ordered = sorted(bookings, key=lambda b: (b.start, b.id))
    active = [b for b in ordered if b.status is BookingStatus.ACTIVE]
    rows = []
    for g in node.gpus:
        slots = []
        for lo, hi in buckets(start, end, DAY):
            total = (hi - lo) // HOUR
            entries = []
            for b in active:
                hours = overlap(b, lo, hi) // HOUR
                if g.id in b.gpu_ids and hours > 0:
                    entry = b_obj(b)
                    entry["hours"] = hours
                    entry["overlap_start"] = iso(max(b.start, lo))
                    entry["overlap_end"] = iso(min(b.end, hi))
                    entries.append(entry)
            booked = sum(e["hours"] for e in entries)
            status = "free" if booked == 0 else "occupied" if booked >= total else "partial"
            ranks = {"low": 1, "medium": 2, "high": 3}
            priority = max((e["priority"] for e in entries), key=ranks.__getitem__, default=None)
            slots.append(
                {
                    "start": iso(lo),
                    "end": iso(hi),
                    "status": status,
                    "booked_hours": booked,
                    "total_hours": total,
                    "priority": priority if booked else None,
                    "bookings": entries,
                }
            )
        rows.append({"gpu": {"id": g.id, "kind": g.kind}, "day_slots": slots})
    days = [
        {
            "key": datetime.fromtimestamp(lo, tz=UTC).date().isoformat(),
            "start": iso(lo),
            "end": iso(hi),
        }
        for lo, hi in buckets(start, end, DAY)
    ]
    return {
        "node": node_obj(node),
        "start": iso(start),
        "end": iso(end),
        "hours": [],
        "grid": {"hours": [], "days": days, "rows": rows},
    }


def naive_claim_rows(
    nodes: Sequence[Node], start: int, end: int, bookings: Sequence[Booking]
) -> dict[str, list[tuple[int, int, int]]]:
    """GPU id -> [(booking id, start, end)] of non-cancelled bookings overlapping the window."""
    ordered = sorted(bookings, key=lambda b: (b.start, b.id))
    return {
        g.id: [
            (b.id, b.start, b.end)
            for b in ordered
            if g.id in b.gpu_ids
            and b.status is not BookingStatus.CANCELLED
            and overlap(b, start, end)
        ]
        for n in nodes
        for g in n.gpus
    }
