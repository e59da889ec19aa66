"""The answer-size estimates (``core.view_size``) bound the JSON the views really produce,
closely enough not to refuse ordinary requests."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from procplan.core import view_size
from procplan.core.model import Booking, BookingStatus, Gpu, Node, Priority
from procplan.core.timeutil import DAY, HOUR
from procplan.wire import calendar

START = 1_795_392_000  # 2026-11-23T00:00:00Z
NODE = Node("node-b", "Node B", tuple(Gpu(f"node-b-gpu{i}", "H100", i) for i in range(8)))


def actual(payload: object) -> int:
    return len(orjson.dumps(payload))


@st.composite
def bookings(draw: st.DrawFn) -> list[Booking]:
    items = []
    for n in range(draw(st.integers(0, 30))):
        begin = START + draw(st.integers(-3 * DAY, 20 * DAY)) // 60 * 60
        length = draw(st.integers(60, 35 * DAY)) // 60 * 60
        gpus = draw(st.lists(st.sampled_from(NODE.gpu_ids), min_size=1, max_size=8, unique=True))
        label = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=64))
        status = draw(st.sampled_from(list(BookingStatus)))
        priority = draw(st.sampled_from(list(Priority)))
        items.append(
            Booking(
                n + 1,
                NODE.id,
                tuple(gpus),
                begin,
                begin + length,
                "u" * 20,
                label or "x",
                priority,
                status,
                START,
            )
        )
    return items


@settings(max_examples=60, deadline=None)
@given(items=bookings(), days=st.integers(1, 40))
def test_estimates_bound_every_view(items: list[Booking], days: int) -> None:
    end = START + days * DAY
    assert actual(calendar.hour_view(NODE, START, end, items)) <= view_size.hour_view_bytes(
        NODE, START, end, items
    )
    assert actual(calendar.day_view(NODE, START, end, items)) <= view_size.day_view_bytes(
        NODE, START, end, items
    )
    assert actual(calendar.claim_rows([NODE], START, end, items)) <= view_size.claim_rows_bytes(
        [NODE], START, end, items
    )


def test_estimates_are_close_for_an_ordinary_calendar() -> None:
    """A busy month: 4-hour bookings of one or two GPUs all day long, labels of ten letters."""
    items = [
        Booking(
            n + 1,
            NODE.id,
            NODE.gpu_ids[n % 8 : n % 8 + 1 + n % 2],
            START + n * 2 * HOUR,
            START + n * 2 * HOUR + 4 * HOUR,
            "alice",
            "experiment",
            Priority.MEDIUM,
            BookingStatus.ACTIVE,
            START,
        )
        for n in range(360)
    ]
    end = START + 30 * DAY
    for real, estimate in [
        (calendar.hour_view(NODE, START, end, items), view_size.hour_view_bytes),
        (calendar.day_view(NODE, START, end, items), view_size.day_view_bytes),
    ]:
        ratio = estimate(NODE, START, end, items) / actual(real)
        assert 1.0 <= ratio <= 1.5, (estimate.__name__, ratio)
    claims = view_size.claim_rows_bytes([NODE], START, end, items)
    assert 1.0 <= claims / actual(calendar.claim_rows([NODE], START, end, items)) <= 1.6
