"""Calendar answers (``procplan.wire``): exact COMPAT shapes on a worked example, and agreement
with the naive reference (per hour/day, per GPU, scan all bookings) on random inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from wire_naive_calendar import naive_claim_rows, naive_day_view, naive_hour_view

from procplan.core.model import Booking, BookingStatus, Gpu, Node, Priority
from procplan.core.timeutil import DAY, HOUR, parse_instant, to_iso
from procplan.core.views import Availability, Granularity, LedgerWindow
from procplan.wire.bookings import procplan_booking
from procplan.wire.calendar import (
    availability_grids,
    claim_rows,
    claims_calendar,
    day_view,
    day_views,
    hour_view,
    hour_views,
)
from procplan.wire.compat import procplan_node

T0 = parse_instant("2026-11-23T00:00:00+00:00")
NODE = Node("n1", "Node 1", (Gpu("g0", "A100", 0), Gpu("g1", "A100", 1)))


def dumps(payload: object) -> str:
    """Compact JSON as the API writes it: key order is part of the comparison."""
    return json.dumps(payload, separators=(",", ":"))


def booking(
    id: int,
    start: int,
    end: int,
    gpus: tuple[str, ...] = ("g0",),
    priority: Priority = Priority.MEDIUM,
    status: BookingStatus = BookingStatus.ACTIVE,
    label: str = "AB",
) -> Booking:
    return Booking(id, "n1", gpus, start, end, "alice", label, priority, status)


def test_procplan_booking_and_node_shapes() -> None:
    b = booking(7, T0, T0 + 2 * HOUR, ("g1", "g0"), Priority.HIGH)
    assert dumps(procplan_booking(b)) == (
        '{"id":7,"user_label":"AB","start":"2026-11-23T00:00:00+00:00",'
        '"end":"2026-11-23T02:00:00+00:00","status":"active","gpu_ids":["g1","g0"],'
        '"priority":"high"}'
    )
    assert dumps(procplan_node(NODE)) == (
        '{"id":"n1","name":"Node 1","gpu_count":2,'
        '"gpus":[{"id":"g0","kind":"A100"},{"id":"g1","kind":"A100"}]}'
    )


def test_hour_view_worked_example() -> None:
    low = booking(1, T0, T0 + 2 * HOUR, ("g0",), Priority.LOW, label="LO")
    high = booking(2, T0 + HOUR, T0 + 2 * HOUR, ("g0",), Priority.HIGH, label="HI")
    gone = booking(3, T0, T0 + HOUR, ("g1",), status=BookingStatus.CANCELLED)
    view = hour_view(NODE, T0, T0 + 2 * HOUR, [gone, high, low])
    assert list(view) == ["node", "start", "end", "hours", "grid"]
    first, second = view["hours"]
    assert list(first) == [
        "start",
        "end",
        "available_gpu_ids",
        "used_gpu_ids",
        "available_count",
        "used_count",
        "bookings",
    ]
    assert first["used_gpu_ids"] == ["g0"] and first["available_gpu_ids"] == ["g1"]
    assert [b["id"] for b in first["bookings"]] == [1, 3]  # cancelled listed, not counted
    assert [b["id"] for b in second["bookings"]] == [1, 2]
    slots = view["grid"]["rows"][0]["hour_slots"]
    assert [s["booking"]["user_label"] for s in slots] == ["LO", "HI"]  # priority wins
    assert view["grid"]["rows"][1]["hour_slots"][0] == {
        "start": "2026-11-23T00:00:00+00:00",
        "end": "2026-11-23T01:00:00+00:00",
        "status": "free",
    }
    assert dumps(view) == dumps(naive_hour_view(NODE, T0, T0 + 2 * HOUR, [gone, high, low]))


def test_day_view_worked_example() -> None:
    # 22:00 day 0 -> 03:00 day 1 on g0 (2 h + 3 h), plus a 30-hour high booking on g1
    night = booking(1, T0 + 22 * HOUR, T0 + DAY + 3 * HOUR, ("g0",), Priority.LOW)
    long = booking(2, T0, T0 + 30 * HOUR, ("g1",), Priority.HIGH)
    done = booking(3, T0, T0 + HOUR, ("g0",), status=BookingStatus.COMPLETED)
    view = day_view(NODE, T0, T0 + 2 * DAY, [night, long, done])
    assert list(view) == ["node", "start", "end", "hours", "grid"]
    assert view["hours"] == [] and view["grid"]["hours"] == []
    assert view["grid"]["days"][1] == {
        "key": "2026-11-24",
        "start": "2026-11-24T00:00:00+00:00",
        "end": "2026-11-25T00:00:00+00:00",
    }
    g0, g1 = (row["day_slots"] for row in view["grid"]["rows"])
    assert [s["booked_hours"] for s in g0] == [2, 3]
    assert [s["status"] for s in g1] == ["occupied", "partial"]
    assert g0[1]["bookings"][0]["overlap_start"] == "2026-11-24T00:00:00+00:00"
    assert list(g0[0]) == [
        "start",
        "end",
        "status",
        "booked_hours",
        "total_hours",
        "priority",
        "bookings",
    ]
    assert list(g0[0]["bookings"][0])[-3:] == ["hours", "overlap_start", "overlap_end"]
    assert dumps(view) == dumps(naive_day_view(NODE, T0, T0 + 2 * DAY, [night, long, done]))


def test_day_view_cuts_last_bucket_and_keys_by_bucket_start_date() -> None:
    start = T0 + 20 * HOUR
    view = day_view(NODE, start, start + 30 * HOUR, [])
    days = view["grid"]["days"]
    assert [d["key"] for d in days] == ["2026-11-23", "2026-11-24"]
    assert days[1]["end"] == to_iso(start + 30 * HOUR)
    assert [s["total_hours"] for s in view["grid"]["rows"][0]["day_slots"]] == [24, 6]


# ------------------------------------------------------------------------------ properties

GPU_SETS = st.lists(
    st.sampled_from(("g0", "g1", "g2", "ghost")), min_size=1, max_size=3, unique=True
)


@st.composite
def scenarios(draw: st.DrawFn, step: int = HOUR) -> tuple[Node, int, int, list[Booking]]:
    """1-3 GPUs, a window of up to 5 days, random bookings around it (``step`` = time grain)."""
    gpus = tuple(Gpu(f"g{i}", "K", i) for i in range(draw(st.integers(1, 3))))
    node = Node("n", "N", gpus)
    start = T0 + draw(st.integers(-24, 24)) * HOUR
    end = start + draw(st.integers(1, 5 * 24)) * HOUR
    grains = (end - start) // step
    items = []
    for i in range(draw(st.integers(0, 12))):
        s = start + draw(st.integers(-grains // 2 - 2, grains + 2)) * step
        e = s + draw(st.integers(1, 3 * grains + 1)) * step
        items.append(
            Booking(
                id=draw(st.integers(1, 5)) * 100 + i,  # unique, not in start order
                node_id="n",
                gpu_ids=tuple(draw(GPU_SETS)),
                start=s,
                end=e,
                user="u",
                label=draw(st.sampled_from(("AB", "CD", "É"))),
                priority=draw(st.sampled_from(list(Priority))),
                status=draw(st.sampled_from(list(BookingStatus))),
            )
        )
    return node, start, end, items


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_hour_view_matches_naive(case: tuple[Node, int, int, list[Booking]]) -> None:
    node, start, end, items = case
    assert dumps(hour_view(node, start, end, items)) == dumps(
        naive_hour_view(node, start, end, items)
    )


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_day_view_matches_naive(case: tuple[Node, int, int, list[Booking]]) -> None:
    node, start, end, items = case
    assert dumps(day_view(node, start, end, items)) == dumps(
        naive_day_view(node, start, end, items)
    )


@settings(max_examples=100, deadline=None)
@given(scenarios(step=15 * 60))
def test_views_match_naive_at_minute_precision(case: tuple[Node, int, int, list[Booking]]) -> None:
    """Native bookings are minute-precise: partial hours count as overlap (hour view) and are
    floored per entry (day view)."""
    node, start, end, items = case
    assert dumps(hour_view(node, start, end, items)) == dumps(
        naive_hour_view(node, start, end, items)
    )
    assert dumps(day_view(node, start, end, items)) == dumps(
        naive_day_view(node, start, end, items)
    )


@settings(max_examples=200, deadline=None)
@given(scenarios(), scenarios())
def test_claim_rows_hold_exactly_the_non_cancelled_overlapping_bookings(
    first: tuple[Node, int, int, list[Booking]], second: tuple[Node, int, int, list[Booking]]
) -> None:
    node_a, start, end, items = first
    node_b = Node("m", "M", tuple(Gpu(f"m{g.id}", g.kind, g.index) for g in second[0].gpus))
    others = [
        Booking(b.id + 10_000, "m", tuple(f"m{g}" for g in b.gpu_ids), b.start, b.end, "v", "X")
        for b in second[3]
    ]
    payload = claim_rows([node_a, node_b], start, end, items + others)
    assert payload["start"] == to_iso(start) and payload["end"] == to_iso(end)
    got: dict[str, list[tuple[int, int, int]]] = {}
    for node_obj, node in zip(payload["nodes"], (node_a, node_b), strict=True):
        assert (node_obj["id"], node_obj["name"]) == (node.id, node.name)
        for gpu_obj, gpu in zip(node_obj["gpus"], node.gpus, strict=True):
            assert (gpu_obj["id"], gpu_obj["kind"], gpu_obj["index"]) == (
                gpu.id,
                gpu.kind,
                gpu.index,
            )
            got[gpu.id] = [
                (c["booking_id"], parse_instant(c["start"]), parse_instant(c["end"]))
                for c in gpu_obj["claims"]
            ]
            for claim in gpu_obj["claims"]:
                assert list(claim) == [
                    "booking_id",
                    "start",
                    "end",
                    "user",
                    "label",
                    "priority",
                    "status",
                ]
                assert claim["status"] in ("active", "completed")
    assert got == naive_claim_rows([node_a, node_b], start, end, items + others)


@settings(max_examples=50, deadline=None)
@given(scenarios(), scenarios())
def test_bulk_views_equal_per_node_views(
    first: tuple[Node, int, int, list[Booking]], second: tuple[Node, int, int, list[Booking]]
) -> None:
    """``*_views`` share the window grid between nodes; the bytes must not change."""
    node_a, start, end, items = first
    node_b = Node("m", "M", tuple(Gpu(f"m{g.id}", g.kind, g.index) for g in second[0].gpus))
    others = [
        Booking(b.id, "m", tuple(f"m{g}" for g in b.gpu_ids), b.start, b.end, "v", "X", b.priority)
        for b in second[3]
    ]
    stray = [Booking(999, "nowhere", ("g0",), start, end, "x", "Y")]  # node not asked for
    mixed = others + stray + items
    for bulk, single in ((day_views, day_view), (hour_views, hour_view)):
        payloads = bulk([node_b, node_a], start, end, mixed)
        assert dumps(payloads) == dumps(
            [single(node_b, start, end, others), single(node_a, start, end, items)]
        )


def test_service_values_render_as_the_views() -> None:
    """``availability_grids`` and ``claims_calendar`` render the services' values
    (``core.views``) with the same bytes as the views they wrap."""
    items = (booking(1, T0 + HOUR, T0 + 5 * HOUR), booking(2, T0, T0 + 30 * HOUR, ("g1",)))
    window = LedgerWindow(T0, T0 + 2 * DAY, (NODE,), items)
    single: dict[Granularity, Any] = {"hour": hour_view, "day": day_view}
    for granularity, view in single.items():
        grids = availability_grids(Availability(window, granularity))
        assert dumps(grids) == dumps([view(NODE, T0, T0 + 2 * DAY, items)])
    assert dumps(claims_calendar(window)) == dumps(claim_rows([NODE], T0, T0 + 2 * DAY, items))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-62_135_596_800, max_value=253_402_300_799))
def test_to_iso_fast_path_matches_datetime(instant: int) -> None:
    assert to_iso(instant) == datetime.fromtimestamp(instant, tz=UTC).isoformat()


def test_payload_values_are_plain_json_types() -> None:
    """No enum members leak into payloads (orjson/json must write plain strings)."""
    b = booking(1, T0, T0 + HOUR)
    view = hour_view(NODE, T0, T0 + HOUR, [b])

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            assert type(value) in (str, int, type(None)), value

    walk(view)
    walk(day_view(NODE, T0, T0 + DAY, [b]))
    walk(claim_rows([NODE], T0, T0 + DAY, [b]))
