"""The pure core of editing a booking (ADR 0024): what it becomes, what may change once it has
started, and which claims it adds (only those are checked against the ledger)."""

from __future__ import annotations

import pytest

from procplan.core.booking_edit import (
    BookingEdit,
    Segment,
    edited_request,
    needs_room,
    new_claims,
    validate_edit,
)
from procplan.core.bookings import BookingLimits
from procplan.core.errors import Conflict, InvalidRequest
from procplan.core.model import Booking, Gpu, Node, Priority

H = 3600
NODE = Node("n", "n", tuple(Gpu(f"g{i}", index=i) for i in range(3)))
CURRENT = Booking(5, "n", ("g0", "g1"), 10 * H, 12 * H, "ada", "A", Priority.MEDIUM)


def test_edited_request_keeps_what_is_not_named():
    req = edited_request(CURRENT, BookingEdit(end=13 * H, label=""))
    assert (req.start, req.end, req.gpu_ids, req.label) == (10 * H, 13 * H, ("g0", "g1"), "ada")
    same_set = edited_request(CURRENT, BookingEdit(gpu_ids=("g1", "g0")))
    assert same_set.gpu_ids == ("g0", "g1")


def test_new_claims_are_only_the_added_parts():
    moved = edited_request(CURRENT, BookingEdit(start=11 * H, end=13 * H, gpu_ids=("g1", "g2")))
    assert new_claims(CURRENT, moved) == [
        Segment(("g2",), 11 * H, 13 * H),
        Segment(("g1",), 12 * H, 13 * H),
    ]
    earlier = edited_request(CURRENT, BookingEdit(start=8 * H, end=9 * H))
    assert new_claims(CURRENT, earlier) == [Segment(("g0", "g1"), 8 * H, 9 * H)]
    shrunk = edited_request(CURRENT, BookingEdit(end=11 * H, gpu_ids=("g0",), label="B"))
    assert new_claims(CURRENT, shrunk) == [] and not needs_room(CURRENT, shrunk)
    assert needs_room(CURRENT, moved) and needs_room(CURRENT, earlier)


def test_a_started_booking_keeps_its_start_and_gpus():
    now = 11 * H
    with pytest.raises(Conflict) as refused:
        validate_edit(
            CURRENT, edited_request(CURRENT, BookingEdit(start=11 * H)), NODE, now, BookingLimits()
        )
    assert refused.value.code == "started"
    with pytest.raises(Conflict):
        validate_edit(
            CURRENT,
            edited_request(CURRENT, BookingEdit(gpu_ids=("g2",))),
            NODE,
            now,
            BookingLimits(),
        )
    # A start far in the past is kept, not judged again; the end may move but not into the past.
    late = 20 * H
    validate_edit(
        CURRENT, edited_request(CURRENT, BookingEdit(end=21 * H)), NODE, late, BookingLimits()
    )
    with pytest.raises(InvalidRequest):
        validate_edit(
            CURRENT, edited_request(CURRENT, BookingEdit(end=19 * H)), NODE, late, BookingLimits()
        )
