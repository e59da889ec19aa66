"""The mirror's per-node index, updated in place per write, equals one built from scratch.

Each write used to re-sort every booking the node ever had (issue #18); now each changed
booking is bisected out and in. Random sequences of new bookings and of changes to known ones
(moved, shortened, cancelled; several versions of one booking in one sync included) must
leave the index exactly as a full rebuild from the final versions would, and answer every
window the same.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from procplan.core.model import Booking, BookingStatus
from procplan.store.ledger_mirror import _NodeIndex

_STEPS = st.lists(
    st.tuples(
        st.integers(0, 12),  # which booking (by id): new or a new version of a known one
        st.integers(0, 40),  # start
        st.integers(1, 15),  # length
        st.booleans(),  # cancelled
        st.booleans(),  # sync after this step
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_STEPS)
def test_changes_bisected_in_equal_a_rebuild(steps: list[tuple[int, int, int, bool, bool]]) -> None:
    members: dict[int, Booking] = {}
    index = _NodeIndex.build(())
    pending: list[tuple[Booking | None, Booking]] = []
    for booking_id, start, length, cancelled, sync in steps:
        status = BookingStatus.CANCELLED if cancelled else BookingStatus.ACTIVE
        new = Booking(booking_id, "n", ("g0",), start, start + length, "u", "l", status=status)
        pending.append((members.get(booking_id), new))
        members[booking_id] = new
        if sync:
            index, pending = index.changed(pending), []
    index = index.changed(pending)
    rebuilt = _NodeIndex.build(members.values())
    active = (
        _NodeIndex.build(())
        .changed([(None, b) for b in members.values() if b.is_active])
        .changed([(b, None) for b in members.values() if b.is_active and b.id % 2])
    )
    expected = _NodeIndex.build(b for b in members.values() if b.is_active and not b.id % 2)
    assert (active.starts, active.items) == (expected.starts, expected.items)
    assert (index.starts, index.items) == (rebuilt.starts, rebuilt.items)
    assert index.max_span >= rebuilt.max_span
    for start in range(0, 60, 3):
        for end in range(start + 1, start + 20, 4):
            assert index.overlapping(start, end) == rebuilt.overlapping(start, end)
