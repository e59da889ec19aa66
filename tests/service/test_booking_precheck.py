"""A refusal answered from the in-memory ledger is the writer's own answer (issue #18).

``refuse_from_mirror`` answers ProcPlan's ``/api/book`` conflicts without the writer. On
random ledgers and requests: whenever it refuses, the writer (asked right after, on the same
ledger) refuses with the same code and message; it never refuses what the writer accepts. A
job in the way is the writer's to report, and a drained node keeps the writer's
``node_draining``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procplan.core.bookings import BookingLimits
from procplan.core.errors import DomainError
from procplan.core.model import BookingRequest, BookingStatus
from procplan.core.timeutil import HOUR
from procplan.core.topology import demo_topology
from procplan.service.booking_precheck import refuse_from_mirror
from procplan.service.bookings import BookingService
from procplan.store.bookings_repo import BookingFilter
from procplan.store.engine import Store
from procplan.testing import FakeClock

NOW = 1_795_428_000 - 1_795_428_000 % HOUR
NODES = {node.id: [gpu.id for gpu in node.gpus] for node in demo_topology().nodes}


@pytest.fixture
def service(store: Store) -> BookingService:
    made = BookingService(store, FakeClock(NOW), BookingLimits())
    made.replace_topology(demo_topology())
    return made


@st.composite
def requests(draw: st.DrawFn, user: str) -> BookingRequest:
    node = draw(st.sampled_from(sorted(NODES)))
    start = NOW + HOUR * draw(st.integers(1, 30))
    end = start + HOUR * draw(st.integers(1, 6))
    gpus = NODES[node]
    if draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(gpus), min_size=1, max_size=len(gpus), unique=True))
        return BookingRequest(node, start, end, user, user, gpu_ids=tuple(chosen))
    return BookingRequest(node, start, end, user, user, gpu_count=draw(st.integers(1, len(gpus))))


def outcome(call: object) -> tuple[str, str] | None:
    try:
        call()  # type: ignore[operator]
    except DomainError as refused:
        return refused.code, refused.message
    return None


def cancel_all(service: BookingService) -> None:
    rows, _ = service.list(BookingFilter(status=BookingStatus.ACTIVE, limit=10_000))
    for booking in rows:
        service.cancel(booking.id)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(requests("ann"), max_size=12), requests("bob"))
def test_a_refusal_from_memory_is_the_writers(
    service: BookingService, ledger: list[BookingRequest], ask: BookingRequest
) -> None:
    try:
        for existing in ledger:
            outcome(lambda existing=existing: service.create(existing, whole_hours=True))
        mirror, far = service.mirror, NOW + 100 * HOUR
        everything = [b for b in mirror.window(None, NOW, far) if b.is_active]
        assert mirror.active_window(None, NOW, far) == everything
        early = outcome(lambda: refuse_from_mirror(service, ask, whole_hours=True))
        written = outcome(lambda: service.create(ask, whole_hours=True))
        if early is not None:
            assert written == early
    finally:
        cancel_all(service)


def test_a_plain_conflict_is_refused_from_memory(service: BookingService) -> None:
    taken = BookingRequest("node-a", NOW + HOUR, NOW + 3 * HOUR, "ann", "A", gpu_count=4)
    service.create(taken, whole_hours=True)
    ask = BookingRequest(
        "node-a", NOW + 2 * HOUR, NOW + 4 * HOUR, "bob", "B", gpu_ids=("node-a-gpu2",)
    )
    assert outcome(lambda: refuse_from_mirror(service, ask, whole_hours=True)) == (
        "gpu_conflict",
        "GPU 'node-a-gpu2' is already booked for the requested window",
    )
    many = BookingRequest("node-a", NOW + 2 * HOUR, NOW + 4 * HOUR, "bob", "B", gpu_count=1)
    assert outcome(lambda: refuse_from_mirror(service, many, whole_hours=True)) == (
        "no_free_gpus",
        "Not enough GPUs available for the requested window",
    )
    free = BookingRequest("node-a", NOW + 3 * HOUR, NOW + 4 * HOUR, "bob", "B", gpu_count=4)
    assert outcome(lambda: refuse_from_mirror(service, free, whole_hours=True)) is None


def test_a_drained_node_is_left_to_the_writer(service: BookingService) -> None:
    taken = BookingRequest("node-a", NOW + HOUR, NOW + 3 * HOUR, "ann", "A", gpu_count=4)
    service.create(taken, whole_hours=True)
    ask = BookingRequest("node-a", NOW + HOUR, NOW + 2 * HOUR, "bob", "B", gpu_count=1)
    drained = {"node-a": object()}
    refused = outcome(
        lambda: refuse_from_mirror(service, ask, whole_hours=True, drained=lambda _v: drained)
    )
    assert refused is None


def test_an_invalid_request_is_left_to_the_writer(service: BookingService) -> None:
    ask = BookingRequest("node-a", NOW + HOUR + 60, NOW + 2 * HOUR, "bob", "B", gpu_count=1)
    assert outcome(lambda: refuse_from_mirror(service, ask, whole_hours=True)) is None
    assert outcome(lambda: service.create(ask, whole_hours=True)) is not None
