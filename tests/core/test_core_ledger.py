"""Ledger: half-open overlap queries, atomic mutations, best-fit selection, overlap audit."""

from __future__ import annotations

import pytest

from procplan.core.errors import Conflict, InvalidRequest
from procplan.core.invariants import find_overlaps
from procplan.core.ledger import Ledger, select_free_gpus
from procplan.core.model import Claim


def test_half_open_intervals() -> None:
    ledger = Ledger([Claim("g", 10, 20, 1), Claim("g", 30, 40, 2)])
    assert ledger.conflicts("g", 0, 10) == []
    assert ledger.conflicts("g", 20, 30) == []
    assert ledger.is_free("g", 20, 30)
    assert ledger.conflicts("g", 19, 31) == [Claim("g", 10, 20, 1), Claim("g", 30, 40, 2)]
    assert ledger.conflicts("g", 15, 16) == [Claim("g", 10, 20, 1)]
    assert not ledger.is_free("g", 39, 45)
    assert ledger.conflicts("other", 0, 100) == []
    assert ledger.conflicts("g", 15, 15) == []  # empty query


def test_add_conflict_message_and_unchanged() -> None:
    ledger = Ledger([Claim("g", 10, 20, 1)])
    with pytest.raises(Conflict) as info:
        ledger.add(Claim("g", 19, 25, 2))
    assert info.value.message == "GPU 'g' is already booked for the requested window"
    assert info.value.code == "gpu_conflict"
    assert ledger.all_claims() == [Claim("g", 10, 20, 1)]
    ledger.add(Claim("g", 20, 25, 2))
    assert [c.booking_id for c in ledger.claims_of("g")] == [1, 2]


def test_add_all_is_atomic_and_checks_the_batch_itself() -> None:
    ledger = Ledger([Claim("b", 0, 10, 1)])
    with pytest.raises(Conflict, match="GPU 'b'"):
        ledger.add_all([Claim("a", 0, 10, 2), Claim("b", 5, 15, 2)])
    with pytest.raises(Conflict, match="GPU 'a'"):
        ledger.add_all([Claim("a", 0, 10, 3), Claim("a", 5, 15, 3)])
    assert ledger.all_claims() == [Claim("b", 0, 10, 1)]
    with pytest.raises(InvalidRequest):
        ledger.add(Claim("a", 5, 5, 4))
    assert len(ledger) == 1


def test_remove_and_replace_booking() -> None:
    ledger = Ledger([Claim("a", 0, 10, 1), Claim("b", 0, 10, 1), Claim("a", 10, 20, 2)])
    # extend booking 1 into booking 2: rejected, booking 1 kept as it was
    with pytest.raises(Conflict):
        ledger.replace_booking(1, [Claim("a", 0, 15, 1), Claim("b", 0, 15, 1)])
    assert sorted(ledger.claims_of_booking(1), key=lambda c: c.gpu_id) == [
        Claim("a", 0, 10, 1),
        Claim("b", 0, 10, 1),
    ]
    # release booking 2 early, then extend booking 1
    ledger.replace_booking(2, [Claim("a", 10, 12, 2)])
    ledger.replace_booking(1, [Claim("a", 0, 10, 1), Claim("b", 0, 30, 1)])
    assert ledger.remove_booking(1) == [Claim("a", 0, 10, 1), Claim("b", 0, 30, 1)]
    assert ledger.remove_booking(1) == []
    assert ledger.all_claims() == [Claim("a", 10, 12, 2)]
    assert ledger.is_free("b", 0, 100)


def test_queries_stay_correct_on_overlapping_input() -> None:
    """Legacy data may overlap; queries must still see every claim (the reach column)."""
    claims = [Claim("g", 0, 100, 1), Claim("g", 10, 20, 2), Claim("g", 30, 40, 3)]
    ledger = Ledger(claims)
    assert ledger.conflicts("g", 50, 60) == [Claim("g", 0, 100, 1)]
    assert ledger.conflicts("g", 25, 35) == [Claim("g", 0, 100, 1), Claim("g", 30, 40, 3)]
    ledger.remove_booking(1)
    assert ledger.is_free("g", 50, 60)
    assert len(find_overlaps(claims)) == 2


def test_select_free_gpus_best_fit() -> None:
    ledger = Ledger(
        [
            Claim("loose", 0, 10, 1),  # gap [10, inf)
            Claim("tight", 0, 10, 2),
            Claim("tight", 20, 30, 3),  # gap [10, 20): exact fit
            Claim("busy", 0, 30, 4),
            Claim("wide", 0, 5, 5),
            Claim("wide", 40, 50, 6),  # gap [5, 40)
        ]
    )
    candidates = ["empty", "loose", "busy", "wide", "tight"]
    assert select_free_gpus(ledger, candidates, 10, 20, 1) == ("tight",)
    # result in candidate order; bounded gaps first, then one-sided, then untouched GPUs
    assert select_free_gpus(ledger, candidates, 10, 20, 2) == ("wide", "tight")
    assert select_free_gpus(ledger, candidates, 10, 20, 3) == ("loose", "wide", "tight")
    assert select_free_gpus(ledger, candidates, 10, 20, 4) == ("empty", "loose", "wide", "tight")
    assert select_free_gpus(ledger, candidates, 10, 20, 5) is None
    assert select_free_gpus(ledger, candidates, 10, 20, 0) == ()
    assert select_free_gpus(ledger, ["x", "x"], 0, 1, 2) is None  # duplicates count once
    assert select_free_gpus(ledger, ["e1", "e2", "e3"], 0, 1, 2) == ("e1", "e2")  # ties: order


def test_find_overlaps_pairs() -> None:
    a, b, c = Claim("g", 0, 10, 1), Claim("g", 5, 15, 2), Claim("g", 10, 20, 3)
    assert find_overlaps([c, b, a, Claim("h", 0, 10, 4), Claim("g", 3, 3, 5)]) == [(a, b), (b, c)]
