"""Refused bookings say who is in the way and where the asked GPUs are next free (issue #17).

``next_free`` searches the same holds the rules judge, with ``judge`` itself: it proposes
the first start, on the request's grid (``step``: a minute natively, an hour for ProcPlan),
from which the asked GPUs — or any ``count`` GPUs among the node's — take a booking of the
requested length. The earliest such start is the requested start or a hold's end rounded up
to the grid (if a later start were free and the one a step before were not, some hold must
end in between), so only those are tried: deterministic, and bounded by the look-ahead
(``HORIZON_S``) and ``MAX_TRIES`` candidates.

``BookingConflict`` carries the finding with the refusal. Its ``message`` is the ledger's
usual one (ProcPlan's clients compare it byte for byte); native routes append ``hint()``
and render the structured fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from procplan.core.errors import Conflict
from procplan.core.ledger.rules import Ask, Hold, Holder, judge
from procplan.core.timeutil import DAY, MAX_INSTANT, Instant, ceil_to, to_iso

__all__ = ["HORIZON_S", "MAX_TRIES", "BookingConflict", "Slot", "next_free"]

HORIZON_S = 30 * DAY  # how far past the requested start a suggestion may lie
MAX_TRIES = 2_000  # candidate starts judged at most (each is one judge per GPU)


@dataclass(frozen=True, slots=True)
class Slot:
    """A window where a booking of the asked length fits on ``gpu_ids``."""

    start: Instant
    end: Instant
    gpu_ids: tuple[str, ...]


def next_free(
    ask: Ask,
    holds: Mapping[str, Sequence[Hold]],
    gpu_ids: Sequence[str],
    count: int | None = None,
    *,
    step: int = 60,
    horizon: int = HORIZON_S,
) -> Slot | None:
    """The first window of ``ask``'s length, starting at or after ``ask.start`` on the
    ``step`` grid and at most ``horizon`` later, where ``judge`` accepts the booking on every
    GPU of ``gpu_ids`` (``count`` ``None``) or on ``count`` of them (the first ones free, in
    the given order); ``None`` when there is none. ``holds`` must cover
    ``[ask.start, ask.start + horizon + length)`` (a superset is fine)."""
    length = ask.end - ask.start
    need = len(gpu_ids) if count is None else count
    if length <= 0 or need <= 0 or need > len(gpu_ids):
        return None
    first = ceil_to(ask.start, step)
    last = min(ask.start + horizon, MAX_INSTANT - length)
    ends = {
        ceil_to(hold.end, step)
        for gpu_id in gpu_ids
        for hold in holds.get(gpu_id, ())
        if first < hold.end <= last
    }
    starts = sorted(s for s in ends | {first} if s <= last)
    for start in starts[:MAX_TRIES]:
        trial = replace(ask, start=start, end=start + length)
        free = [g for g in gpu_ids if judge(trial, holds.get(g, ())).ok]
        if len(free) >= need:
            return Slot(start, start + length, tuple(free[:need]))
    return None


class BookingConflict(Conflict):
    """A refused booking with what stands in its way (``holders``, by start) and the first
    window where it would fit (``next_free``; ``None`` when none within the look-ahead)."""

    def __init__(
        self,
        message: str,
        code: str,
        holders: Sequence[Hold],
        suggestion: Slot | None,
    ) -> None:
        super().__init__(message, code)
        self.holders = tuple(holders)
        self.next_free = suggestion

    def hint(self) -> str:
        """The human sentence native routes append to ``message``."""
        parts: list[str] = []
        if self.holders:
            shown = [_holder_text(h) for h in self.holders[:3]]
            more = len(self.holders) - len(shown)
            parts.append("held by " + "; ".join(shown) + (f" and {more} more" if more else ""))
        if self.next_free is None:
            parts.append(f"no free window within {HORIZON_S // DAY} days")
        else:
            slot = self.next_free
            parts.append(
                f"next free: {', '.join(slot.gpu_ids)} {to_iso(slot.start)} to {to_iso(slot.end)}"
            )
        return "; ".join(parts)


def _holder_text(hold: Hold) -> str:
    who = hold.user or "?"
    if hold.holder is Holder.BOOKING and hold.label and hold.label != who:
        who = f"{who} ({hold.label})"
    until = "open-ended" if hold.open_ended else to_iso(hold.end)
    what = f"{hold.holder.value} {hold.holder_id}"
    return f"{hold.gpu_id} by {what} of {who} {to_iso(hold.start)} to {until}"
