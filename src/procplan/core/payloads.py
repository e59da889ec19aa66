"""Building blocks shared by the calendar views: wire objects, ISO memo, window selection.

Kept apart from ``calendar`` so the day view (``dayview``) and the hour view can share them
without an import cycle. Everything here is on the hot path of year-long views, which is why
enum properties are replaced by lookup tables and ISO strings are memoised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any

from procplan.core.model import Booking, BookingStatus, Node
from procplan.core.timeutil import Instant, to_iso

__all__ = ["Json", "node_payload", "public_booking"]

Json = dict[str, Any]

ACTIVE = BookingStatus.ACTIVE
CANCELLED = BookingStatus.CANCELLED
# Indexed by the Priority value (1..3): the enum ``label`` property is slow on hot paths.
PRIORITY_LABELS: tuple[str | None, ...] = (None, "low", "medium", "high")
PRIORITY_RANKS: dict[str | None, int] = {label: rank for rank, label in enumerate(PRIORITY_LABELS)}
# Plain ``str`` values, so payloads never carry enum members.
STATUS_WIRE: dict[str, str] = {status: status.value for status in BookingStatus}
_BY_ID = attrgetter("id")
_BY_START = attrgetter("start")

ISO_MEMO: dict[Instant, str] = {}
_ISO_MEMO_CAP = 50_000


def iso(instant: Instant) -> str:
    """``to_iso`` memoised across calls: every client polls the same weeks, so the same
    instants are formatted over and over. Bounded (cleared when full). Safe under threads: a
    lost insert only costs a recomputation."""
    text = ISO_MEMO.get(instant)
    if text is None:
        if len(ISO_MEMO) >= _ISO_MEMO_CAP:
            ISO_MEMO.clear()
        text = ISO_MEMO[instant] = to_iso(instant)
    return text


def public_booking(b: Booking) -> Json:
    """ProcPlan's public booking object ``B`` (``user_label`` is the booking's label)."""
    return publish((b,))[0]


def publish(items: Sequence[Booking]) -> list[Json]:
    """``public_booking`` for many bookings (a loop with locals: it runs per booking)."""
    memo_get, status_wire, labels = ISO_MEMO.get, STATUS_WIRE, PRIORITY_LABELS
    out: list[Json] = []
    append = out.append
    for b in items:
        s, e = b.start, b.end
        append(
            {
                "id": b.id,
                "user_label": b.label,
                "start": memo_get(s) or iso(s),
                "end": memo_get(e) or iso(e),
                "status": status_wire[b.status],
                "gpu_ids": list(b.gpu_ids),
                "priority": labels[b.priority],
            }
        )
    return out


def node_payload(node: Node) -> Json:
    """The node object of ``/api/nodes`` and of every availability payload."""
    return {
        "id": node.id,
        "name": node.name,
        "gpu_count": len(node.gpus),
        "gpus": [{"id": gpu.id, "kind": gpu.kind} for gpu in node.gpus],
    }


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
        and (b.status is ACTIVE or not active_only)
    ]
    found.sort(key=_BY_ID)
    found.sort(key=_BY_START)
    return found


def boundaries(start: Instant, end: Instant, step: int) -> tuple[list[Instant], list[str]]:
    """Cut ``[start, end)`` into ``step``-long buckets, the last one cut at ``end``.

    Returns the n + 1 boundary instants and their ISO strings.
    """
    cuts = list(range(start, end, step))
    cuts.append(end)
    return cuts, [iso(t) for t in cuts]


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
