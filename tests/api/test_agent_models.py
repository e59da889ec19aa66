"""Agents' reports read off the wire (``api.models.agents``): strict where a value is used,
bounded where it is only shown, and a 400 that names the entry and the field."""

from __future__ import annotations

from typing import Any

import pytest

from procplan.api.boundary import validated
from procplan.api.models.agents import EventsBody, HeartbeatBody, RegistrationBody
from procplan.core.errors import InvalidRequest
from procplan.core.node_reports import MAX_TEXT_LENGTH


def test_registration_sorts_devices_and_keeps_mig() -> None:
    reg = validated(
        RegistrationBody,
        {
            "node_id": " n1 ",
            "hostname": "h1",
            "address": "10.0.0.1",
            "interval_s": 2,
            "devices": [
                {"index": 1, "uuid": "GPU-1", "name": "A100", "memory_mb": 40000, "mig": ["MIG-x"]},
                {"index": 0, "uuid": "GPU-0", "name": "A100", "memory_mb": None},
            ],
            "future_field": {"ignored": True},
        },
    ).registration()
    assert reg.node_id == "n1"
    assert [d.index for d in reg.devices] == [0, 1]
    assert reg.mig == {1: ("MIG-x",)}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"session": "s", "readings": [{"index": True, "uuid": "u"}]}, "readings.0: index must"),
        ({"session": "s", "readings": [{"index": 0, "uuid": "u", "power_w": "x"}]}, "power_w"),
        ({"session": "s", "readings": [{"index": 0, "uuid": "u", "power_w": 1e300}]}, "power_w"),
        ({"session": "s", "processes": [{"gpu_uuid": "u"}]}, "processes.0.pid is required"),
        ({"session": "s", "jobs": [{"id": 1}]}, "jobs.0.run is required"),
        ({"readings": []}, "session is required"),
        ({"session": "s\x1b[2J"}, "session contains a control character"),
        ({"session": "s", "readings": {}}, "readings: Input should be a valid list"),
        ({"session": "s", "readings": [{}] * 513}, "readings: List should have at most 512"),
    ],
)
def test_report_names_the_bad_field(body: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        validated(HeartbeatBody, body)


def test_what_the_host_showed_is_bounded_not_refused() -> None:
    process = {"gpu_uuid": "GPU-0", "pid": 7, "command": "x\x00" * MAX_TEXT_LENGTH, "user": "\x1b"}
    report = validated(HeartbeatBody, {"session": "s", "processes": [process]}).report()
    seen = report.processes[0]
    assert seen.command is not None and len(seen.command) == MAX_TEXT_LENGTH
    assert "\x00" not in seen.command and seen.user == "\x1b"  # shown escaped by clients


def test_events() -> None:
    ask = validated(
        EventsBody,
        {
            "session": "s",
            "events": [
                {"type": "started", "job_id": 1, "run": 0, "pid": 5, "at": 1.5},
                {
                    "type": "exited",
                    "job_id": 1,
                    "run": 0,
                    "exit_code": 0,
                    "at": 2,
                    "reason": "exited",
                },
            ],
        },
    )
    assert ask.session == "s"
    assert [e.event().type for e in ask.events] == ["started", "exited"]
    bad = {"type": "exited", "job_id": 1, "run": 0, "at": 1, "reason": "boom"}
    with pytest.raises(InvalidRequest, match=r"events\.0\.reason"):
        validated(EventsBody, {"session": "s", "events": [bad]})
    with pytest.raises(InvalidRequest, match="needs its pid"):
        validated(EventsBody, {"session": "s", "events": [{"type": "started", "job_id": 1,
                                                           "run": 0, "at": 1}]})  # fmt: skip
