"""Property: any sequence of book / cancel / release / extend keeps booking claims disjoint,
and a rejected change leaves the ledger exactly as it was."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from procplan.core.errors import Conflict
from procplan.core.invariants import find_overlaps
from procplan.core.ledger import Ledger, select_free_gpus
from procplan.core.model import Claim

GPUS = ("g0", "g1", "g2", "g3")


def snapshot(ledger: Ledger) -> Counter[Claim]:
    return Counter(ledger.all_claims())


class Model:
    """The expected claims, kept independently of the ledger."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.bookings: dict[int, list[Claim]] = {}
        self.next_id = 1

    def expected(self) -> Counter[Claim]:
        return Counter(c for claims in self.bookings.values() for c in claims)

    def pick(self, index: int) -> int | None:
        return sorted(self.bookings)[index % len(self.bookings)] if self.bookings else None

    def book(self, gpus: tuple[str, ...], start: int, end: int) -> None:
        claims = [Claim(g, start, end, self.next_id) for g in gpus]
        before = snapshot(self.ledger)
        try:
            self.ledger.add_all(claims)
        except Conflict:
            assert snapshot(self.ledger) == before
            assert any(self.ledger.conflicts(c.gpu_id, start, end) for c in claims)
            return
        self.bookings[self.next_id] = claims
        self.next_id += 1

    def change(self, booking_id: int, new_end: dict[str, int]) -> None:
        """Release or extend through ``replace_booking``; a rejection changes nothing."""
        new = [
            Claim(c.gpu_id, c.start, new_end[c.gpu_id], booking_id)
            for c in self.bookings[booking_id]
        ]
        before = snapshot(self.ledger)
        try:
            self.ledger.replace_booking(booking_id, new)
        except Conflict:
            assert snapshot(self.ledger) == before
            return
        self.bookings[booking_id] = new


@dataclass(frozen=True)
class Book:
    gpus: frozenset[str]
    start: int
    duration: int

    def apply(self, model: Model) -> None:
        model.book(tuple(sorted(self.gpus)), self.start, self.start + self.duration)


@dataclass(frozen=True)
class BookCount:
    count: int
    start: int
    duration: int

    def apply(self, model: Model) -> None:
        start, end = self.start, self.start + self.duration
        chosen = select_free_gpus(model.ledger, GPUS, start, end, self.count)
        free = [g for g in GPUS if model.ledger.is_free(g, start, end)]
        assert (chosen is None) == (len(free) < self.count)
        if chosen is not None:
            assert set(chosen) <= set(free) and len(chosen) == self.count
            model.book(chosen, start, end)


@dataclass(frozen=True)
class Cancel:
    index: int

    def apply(self, model: Model) -> None:
        booking_id = model.pick(self.index)
        if booking_id is not None:
            removed = model.ledger.remove_booking(booking_id)
            assert Counter(removed) == Counter(model.bookings.pop(booking_id))


@dataclass(frozen=True)
class Release:
    index: int
    fraction: float

    def apply(self, model: Model) -> None:
        booking_id = model.pick(self.index)
        if booking_id is not None:
            first = model.bookings[booking_id][0]
            cut = first.start + max(1, int((first.end - first.start) * self.fraction))
            model.change(
                booking_id, {c.gpu_id: min(c.end, cut) for c in model.bookings[booking_id]}
            )


@dataclass(frozen=True)
class Extend:
    index: int
    delta: int

    def apply(self, model: Model) -> None:
        booking_id = model.pick(self.index)
        if booking_id is not None:
            model.change(
                booking_id, {c.gpu_id: c.end + self.delta for c in model.bookings[booking_id]}
            )


@dataclass(frozen=True)
class Query:
    gpu: str
    start: int
    duration: int

    def apply(self, model: Model) -> None:
        start, end = self.start, self.start + self.duration
        brute = [
            c for c in model.expected() if c.gpu_id == self.gpu and c.start < end and start < c.end
        ]
        assert Counter(model.ledger.conflicts(self.gpu, start, end)) == Counter(brute)
        assert model.ledger.is_free(self.gpu, start, end) == (not brute)


Op = Book | BookCount | Cancel | Release | Extend | Query
times = st.integers(min_value=0, max_value=80)
durations = st.integers(min_value=1, max_value=40)
indexes = st.integers(min_value=0, max_value=50)
ops = st.one_of(
    st.builds(Book, st.frozensets(st.sampled_from(GPUS), min_size=1), times, durations),
    st.builds(BookCount, st.integers(1, len(GPUS)), times, durations),
    st.builds(Cancel, indexes),
    st.builds(Release, indexes, st.floats(0.0, 1.0)),
    st.builds(Extend, indexes, durations),
    st.builds(Query, st.sampled_from(GPUS), times, durations),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ops, max_size=40))
def test_ledger_never_double_books(sequence: list[Op]) -> None:
    model = Model()
    for op in sequence:
        op.apply(model)
        claims = model.ledger.all_claims()
        assert find_overlaps(claims) == []
        assert Counter(claims) == model.expected()
        for gpu in GPUS:
            starts = [c.start for c in model.ledger.claims_of(gpu)]
            assert starts == sorted(starts)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(GPUS), times, durations, st.integers(1, 9)), max_size=25),
    st.sampled_from(GPUS),
    times,
    durations,
)
def test_conflicts_match_brute_force_even_with_overlapping_input(
    raw: list[tuple[str, int, int, int]], gpu: str, start: int, duration: int
) -> None:
    claims = [Claim(g, s, s + d, b) for g, s, d, b in raw]
    ledger = Ledger(claims)
    end = start + duration
    brute = [c for c in claims if c.gpu_id == gpu and c.start < end and start < c.end]
    assert Counter(ledger.conflicts(gpu, start, end)) == Counter(brute)
    if raw:  # removing a booking keeps queries exact (the reach column is repaired)
        gone = raw[0][3]
        ledger.remove_booking(gone)
        rest = [c for c in brute if c.booking_id != gone]
        assert Counter(ledger.conflicts(gpu, start, end)) == Counter(rest)
