"""The ``sprio`` answer's shape (``wire.priority``)."""

from __future__ import annotations

from procplan.core.priority_parts import PriorityParts
from procplan.wire.priority import priority_json, priority_list

NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC


def parts(job_id: int, effective: float = 1612.345) -> PriorityParts:
    return PriorityParts(job_id, "alice", "vision", 100, 500.0, 1000 / 3, 12.3456, 2 / 3, effective)


def test_row_keys_ids_as_text_and_two_decimals() -> None:
    assert priority_json(parts(7), 3) == {
        "job_id": "7",
        "position": 3,
        "user": "alice",
        "tenant": "vision",
        "priority": 100,
        "age": 500.0,
        "fairshare": 333.33,
        "size": 12.35,
        "length": 0.67,
        "effective": 1612.35,
    }


def test_list_keeps_places_and_says_when_cut() -> None:
    answer = priority_list([(2, parts(7)), (5, parts(9))], 2, NOW)
    assert list(answer) == ["as_of", "jobs", "total"]
    assert answer["as_of"] == "2026-11-23T10:00:00+00:00"
    assert [(r["job_id"], r["position"]) for r in answer["jobs"]] == [("7", 2), ("9", 5)]
    assert priority_list([(1, parts(7))], 4, NOW)["truncated"] is True
