"""What the wire modules share: the ``Json`` type, enum-to-string tables and the ISO memo.

The tables replace enum properties on hot paths (a year of day views reads them tens of
thousands of times) and make sure answers carry plain strings, never enum members.
"""

from __future__ import annotations

from typing import Any

from procplan.core.model import BookingStatus
from procplan.core.timeutil import Instant, to_iso

__all__ = [
    "ISO",
    "PRIORITY_LABELS",
    "PRIORITY_RANKS",
    "STATUS_WIRE",
    "IsoMemo",
    "Json",
    "boundaries",
    "iso_or_none",
]

Json = dict[str, Any]

# Indexed by the Priority value (1..3): the enum ``label`` property is slow on hot paths.
PRIORITY_LABELS: tuple[str | None, ...] = (None, "low", "medium", "high")
PRIORITY_RANKS: dict[str | None, int] = {label: rank for rank, label in enumerate(PRIORITY_LABELS)}
# Plain ``str`` values, so answers never carry enum members.
STATUS_WIRE: dict[str, str] = {status: status.value for status in BookingStatus}


class IsoMemo:
    """``to_iso`` remembered across calls, bounded (emptied when full).

    Calendar clients poll the same weeks, so the same instants are formatted over and over;
    reusing them across requests is what ``bench/availability_core.py`` measures as the gap
    between a cold and a warm year view. Hot loops read ``cache.get`` directly (a bound
    ``dict.get`` beats a method call) and call the memo only on a miss.

    There is one memo, ``ISO``, for the process, rather than one per app or service: it
    remembers a pure function, so its content can change the cost of an answer but never its
    bytes; two apps in one process (tests) or several threads share it safely (a lost insert
    only costs a recomputation), and nothing needs to reset it.
    """

    __slots__ = ("cache", "cap")

    def __init__(self, cap: int = 50_000) -> None:
        self.cache: dict[Instant, str] = {}
        self.cap = cap

    def __call__(self, instant: Instant) -> str:
        text = self.cache.get(instant)
        if text is None:
            if len(self.cache) >= self.cap:
                self.cache.clear()
            text = self.cache[instant] = to_iso(instant)
        return text


ISO = IsoMemo()


def boundaries(start: Instant, end: Instant, step: int) -> tuple[list[Instant], list[str]]:
    """Cut ``[start, end)`` into ``step``-long buckets, the last one cut at ``end``: the n + 1
    boundary instants and their ISO strings (the hour and day grids' edges)."""
    cuts = list(range(start, end, step))
    cuts.append(end)
    return cuts, [ISO(t) for t in cuts]


def iso_or_none(instant: Instant | None) -> str | None:
    """An optional instant: ISO 8601, or ``null``."""
    return None if instant is None else to_iso(instant)
