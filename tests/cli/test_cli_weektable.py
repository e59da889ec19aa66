"""The GPU × day table must be ProcPlan's text exactly: people and scripts read it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from procplan.cli.weektable import (
    booking_cell,
    no_match_message,
    render_week_table,
    select_nodes,
    week_window,
)

WEEK_TABLE = (
    "Node Training Node A (node-a)\n"
    "Window: 2026-11-23T00:00:00+00:00 – 2026-11-30T00:00:00+00:00\n"
    "GPU                | 2026-11-23 | 2026-11-24 | 2026-11-25 | 2026-11-26  | 2026-11-27 "
    "| 2026-11-28 | 2026-11-29\n"
    "-------------------+------------+------------+------------+-------------+------------"
    "+------------+-----------\n"
    "node-a-gpu0 (A100) | AB (High)  | -          | -          | CD (Medium) | -          "
    "| -          | -         \n"
    "node-a-gpu1 (A100) | -          | -          | EF (Low)   | -           | QQ (High)  "
    "| -          | -         \n"
)


def test_week_table_matches_procplan_layout(make_day_payload, booking):
    payload = make_day_payload(
        {
            "node-a-gpu0": {0: [booking("AB", "high")], 3: [booking("CD", "medium")]},
            "node-a-gpu1": {
                2: [booking("EF", "low")],
                4: [booking("XY", "low"), booking("ZZ", "high"), booking("QQ", "HIGH")],
            },
        }
    )
    assert render_week_table(payload) == WEEK_TABLE


def test_free_week_shows_dashes_and_header_sets_width(make_day_payload):
    text = render_week_table(make_day_payload({}, days=1))
    assert text.splitlines()[2:] == [
        "GPU                | 2026-11-23",
        "-------------------+-----------",
        "node-a-gpu0 (A100) | -         ",
        "node-a-gpu1 (A100) | -         ",
    ]
    assert text.endswith("\n")


def test_cell_picks_highest_priority_and_last_on_ties(booking):
    assert booking_cell([]) == "-"
    assert booking_cell([booking("A", "high"), booking("B", "low")]) == "A (High)"
    assert booking_cell([booking("A", "low"), booking("B", "low")]) == "B (Low)"
    assert booking_cell([booking("", "medium")]) == "Medium"
    assert booking_cell([{"user_label": "X", "priority": None}]) == "X (Medium)"


def test_hour_grid_is_folded_into_days():
    payload = {
        "node": {"id": "n1", "name": "One"},
        "start": "2026-11-23T00:00:00+00:00",
        "end": "2026-11-25T00:00:00+00:00",
        "grid": {
            "hours": [
                {"start": "2026-11-24T00:00:00+00:00"},
                {"start": "2026-11-23T05:00:00+00:00"},
            ],
            "rows": [
                {
                    "gpu": {"id": "g0", "kind": "T4"},
                    "hour_slots": [
                        {"status": "free"},
                        {"status": "booked", "booking": {"user_label": "AB", "priority": "low"}},
                    ],
                }
            ],
        },
    }
    assert render_week_table(payload).splitlines()[2:] == [
        "GPU     | 2026-11-23 | 2026-11-24",
        "--------+------------+-----------",
        "g0 (T4) | AB (Low)   | -         ",
    ]


def test_week_window_defaults_to_monday_for_seven_days():
    wednesday = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)
    start, end = week_window(None, wednesday)
    assert start == datetime(2026, 11, 23, tzinfo=UTC)
    assert (end - start).days == 7


def test_week_window_date_is_one_utc_day():
    start, end = week_window("2024-06-01", datetime.now(tz=UTC))
    assert start.isoformat() == "2024-06-01T00:00:00+00:00"
    assert end.isoformat() == "2024-06-02T00:00:00+00:00"


@pytest.mark.parametrize("bad", ["2024-13-01", "tomorrow", "2024/06/01", ""])
def test_week_window_rejects_bad_dates(bad):
    with pytest.raises(ValueError, match="Invalid --date value, expected YYYY-MM-DD"):
        week_window(bad, datetime.now(tz=UTC))


def test_node_selection_keeps_server_order():
    nodes = [{"id": "b"}, {"id": "a"}, {"id": "c"}]
    assert select_nodes(nodes, {"a", "b"}) == [{"id": "b"}, {"id": "a"}]
    assert select_nodes(nodes, None) == nodes
    assert no_match_message({"zz", "aa"}) == (
        "No matching nodes found for filter(s): aa, zz. Use --all to list every node."
    )
