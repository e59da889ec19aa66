"""The ledger's index: per-GPU sorted interval sets of booking claims, and best-fit selection.

The booking write path ranks free GPUs with it; what may go where is ``rules.judge``. Each GPU
keeps its claims sorted by start plus a running maximum of ends ("reach"). With the ledger's own
invariant (claims never overlap) reach equals the ends, so an overlap query is two bisections and
a slice: O(log n + k). The reach column keeps queries correct even if claims loaded from storage
do overlap (legacy data, a failed audit): ``conflicts`` then still returns every overlap.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate

from procplan.core.errors import Conflict, InvalidRequest
from procplan.core.ledger.refusals import booked_message
from procplan.core.model import Claim
from procplan.core.timeutil import Instant

__all__ = ["Ledger", "select_free_gpus"]

_NEVER = -(1 << 62)


class _Track:
    """One GPU's claims sorted by start; ``reach[i]`` = max end of ``claims[: i + 1]``."""

    __slots__ = ("claims", "reach", "starts")

    def __init__(self, claims: list[Claim]) -> None:
        claims.sort(key=lambda c: (c.start, c.end, c.booking_id))
        self.claims = claims
        self.starts = [c.start for c in claims]
        self.reach = list(accumulate((c.end for c in claims), max))

    def window(self, start: Instant, end: Instant) -> tuple[int, int]:
        """Index range that holds every claim overlapping ``[start, end)`` (and, only when the
        track itself has overlaps, some that do not)."""
        return bisect_right(self.reach, start), bisect_left(self.starts, end)

    def overlapping(self, start: Instant, end: Instant) -> list[Claim]:
        lo, hi = self.window(start, end)
        return [c for c in self.claims[lo:hi] if c.end > start]

    def insert(self, claim: Claim) -> None:
        idx = bisect_right(self.starts, claim.start)
        self.claims.insert(idx, claim)
        self.starts.insert(idx, claim.start)
        before = self.reach[idx - 1] if idx else _NEVER
        self.reach.insert(idx, max(before, claim.end))
        reach = self.reach
        for j in range(idx + 1, len(reach)):
            if reach[j] >= claim.end:
                break
            reach[j] = claim.end

    def delete(self, claim: Claim) -> None:
        idx = bisect_left(self.starts, claim.start)
        while self.claims[idx] is not claim and self.claims[idx] != claim:
            idx += 1
        del self.claims[idx], self.starts[idx], self.reach[idx]
        prev = self.reach[idx - 1] if idx else _NEVER
        for j in range(idx, len(self.claims)):
            value = max(prev, self.claims[j].end)
            if value == self.reach[j]:
                break
            self.reach[j] = value
            prev = value

    def neighbours(self, start: Instant, end: Instant) -> tuple[Instant | None, Instant | None]:
        """End of the latest claim ending by ``start`` and start of the first from ``end`` on."""
        hi = bisect_left(self.starts, end)
        previous = self.reach[hi - 1] if hi else None
        following = self.starts[hi] if hi < len(self.starts) else None
        return previous, following


class Ledger:
    """Claims of active bookings, indexed per GPU (jobs' claims are judged by ``rules``).

    Mutations are atomic: a rejected ``add``/``add_all``/``replace_booking`` leaves the ledger as
    it was, so the store can try a plan on the ledger before it writes.
    """

    def __init__(self, claims: Iterable[Claim] = ()) -> None:
        per_gpu: dict[str, list[Claim]] = {}
        self._by_booking: dict[int, list[Claim]] = {}
        for claim in claims:
            per_gpu.setdefault(claim.gpu_id, []).append(claim)
            self._by_booking.setdefault(claim.booking_id, []).append(claim)
        self._tracks = {gpu_id: _Track(items) for gpu_id, items in per_gpu.items()}

    def __len__(self) -> int:
        return sum(len(track.claims) for track in self._tracks.values())

    def conflicts(self, gpu_id: str, start: Instant, end: Instant) -> list[Claim]:
        """Claims on ``gpu_id`` overlapping ``[start, end)``, by start."""
        track = self._tracks.get(gpu_id)
        if track is None or end <= start:
            return []
        return track.overlapping(start, end)

    def is_free(self, gpu_id: str, start: Instant, end: Instant) -> bool:
        track = self._tracks.get(gpu_id)
        if track is None or end <= start:
            return True
        lo, hi = track.window(start, end)
        return not any(c.end > start for c in track.claims[lo:hi])

    def neighbours(
        self, gpu_id: str, start: Instant, end: Instant
    ) -> tuple[Instant | None, Instant | None]:
        """The free gap around a free window: (end of the claim before, start of the one after);
        ``None`` where there is none. Meaningful only when ``is_free(gpu_id, start, end)``."""
        track = self._tracks.get(gpu_id)
        if track is None or not track.claims:
            return None, None
        return track.neighbours(start, end)

    def add(self, claim: Claim) -> None:
        """Insert one claim; ``Conflict`` (code ``gpu_conflict``) if it overlaps another."""
        self.add_all((claim,))

    def add_all(self, claims: Iterable[Claim]) -> None:
        """Insert claims all-or-nothing: checked against the ledger and against each other."""
        batch = list(claims)
        for i, claim in enumerate(batch):
            if claim.end <= claim.start:
                raise InvalidRequest("Claim end must be after start", code="invalid_window")
            clash = not self.is_free(claim.gpu_id, claim.start, claim.end) or any(
                other.gpu_id == claim.gpu_id and other.start < claim.end and claim.start < other.end
                for other in batch[:i]
            )
            if clash:
                raise Conflict(
                    booked_message(claim.gpu_id),
                    code="gpu_conflict",
                )
        self._insert(batch)

    def _insert(self, claims: Iterable[Claim]) -> None:
        for claim in claims:
            track = self._tracks.get(claim.gpu_id)
            if track is None:
                self._tracks[claim.gpu_id] = _Track([claim])
            else:
                track.insert(claim)
            self._by_booking.setdefault(claim.booking_id, []).append(claim)

    def remove_booking(self, booking_id: int) -> list[Claim]:
        """Drop every claim of a booking (cancel); returns what was removed."""
        removed = self._by_booking.pop(booking_id, [])
        for claim in removed:
            self._tracks[claim.gpu_id].delete(claim)
        return removed

    def replace_booking(self, booking_id: int, claims: Iterable[Claim]) -> None:
        """Swap a booking's claims (release, extend, move) atomically; on ``Conflict`` the old
        claims are restored."""
        new = list(claims)
        old = self.remove_booking(booking_id)
        try:
            self.add_all(new)
        except Exception:
            self._insert(old)  # they were there a moment ago: no re-check needed
            raise

    def claims_of(self, gpu_id: str) -> Sequence[Claim]:
        """The GPU's claims by start (a copy: callers cannot break the index)."""
        track = self._tracks.get(gpu_id)
        return tuple(track.claims) if track is not None else ()

    def claims_of_booking(self, booking_id: int) -> Sequence[Claim]:
        return tuple(self._by_booking.get(booking_id, ()))

    def all_claims(self) -> list[Claim]:
        """Every claim, grouped by GPU (in first-seen GPU order), by start within a GPU."""
        return [claim for track in self._tracks.values() for claim in track.claims]


def select_free_gpus(
    ledger: Ledger,
    candidates: Sequence[str],
    start: Instant,
    end: Instant,
    count: int,
) -> tuple[str, ...] | None:
    """Pick ``count`` GPUs free over ``[start, end)``, best fit first; ``None`` if too few.

    Best fit limits fragmentation: prefer the GPU whose free gap around the window is tightest,
    so long gaps stay whole for long bookings. A gap bounded on both sides beats one open on a
    side, which beats an untouched GPU; among equals the smaller leftover slack wins, then the
    candidate order. The result is in candidate (config) order.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    ranked: list[tuple[int, int, int, str]] = []
    seen: set[str] = set()
    for position, gpu_id in enumerate(candidates):
        if gpu_id in seen or not ledger.is_free(gpu_id, start, end):
            continue
        seen.add(gpu_id)
        previous, following = ledger.neighbours(gpu_id, start, end)
        open_sides = (previous is None) + (following is None)
        slack = (start - previous if previous is not None else 0) + (
            following - end if following is not None else 0
        )
        ranked.append((open_sides, slack, position, gpu_id))
    if len(ranked) < count:
        return None
    chosen = sorted(ranked)[:count]
    chosen.sort(key=lambda item: item[2])
    return tuple(item[3] for item in chosen)
