"""Notes as values (issue #14): the words people read, the keys that deduplicate, and the
``--events`` a channel subscribes with."""

from __future__ import annotations

import pytest

from procplan.core.jobs import Job, JobState
from procplan.core.model import Booking
from procplan.core.notes import (
    NoteKind,
    booking_soon,
    job_ended,
    job_preempt_warning,
    job_preempted,
    job_started,
    node_changed,
    parse_kinds,
)

NOW = 1_795_428_000  # 2026-11-23 10:00 UTC


def job(**fields: object) -> Job:
    base: dict[str, object] = {"id": 7, "user": "ada", "name": "train", "requeues": 0}
    return Job(**{**base, **fields})  # type: ignore[arg-type]


def test_a_failed_job_says_its_code_and_last_log_lines() -> None:
    failed = job(state=JobState.FAILED, exit_code=3, message="exited with code 3")
    note = job_ended(failed, [f"line {i}" for i in range(30)])
    assert (note.kind, note.user, note.key) == (NoteKind.JOB_FAILED, "ada", "job:7:0:ended")
    assert note.subject == "Job 7 (train) failed (exit code 3)"
    assert note.body.splitlines()[-10:] == [f"line {i}" for i in range(20, 30)]
    done = job_ended(job(state=JobState.COMPLETED, exit_code=0), ["never shown"])
    assert done.kind is NoteKind.JOB_FINISHED and "never shown" not in done.body


def test_each_run_of_a_job_is_its_own_event() -> None:
    first, second = job_started(job(), NOW), job_started(job(requeues=1), NOW)
    assert first.key != second.key
    assert (first.subject, second.subject) == (
        "Job 7 (train) started",
        "Job 7 (train) started (run 2)",
    )
    assert job_preempted(job(), "for job 9", False).kind is NoteKind.JOB_PREEMPTED
    assert job_preempted(job(), "for job 9", True).kind is NoteKind.JOB_REQUEUED


def test_warnings_bookings_and_nodes() -> None:
    warning = job_preempt_warning(job(), 5, NOW + 600)
    assert warning.subject == "Job 7 (train) will be preempted at 2026-11-23 10:10 UTC"
    booking = Booking(5, "node-a", ("g0", "g1"), NOW + 600, NOW + 3600, "bob", "exp")
    starts = booking_soon(booking, True, 10)
    assert (starts.user, starts.subject) == ("bob", "Booking 5 starts in 10 min")
    assert booking_soon(booking, False, 3).key == f"booking:5:ends:{NOW + 3600}"
    down = node_changed("node-a", False, NOW)
    assert (down.user, down.kind) == (None, NoteKind.NODE_OFFLINE)


def test_events_a_channel_subscribes_with() -> None:
    assert parse_kinds("*") is None and parse_kinds("") is None
    assert parse_kinds("job.failed, booking") == {
        NoteKind.JOB_FAILED, NoteKind.BOOKING_STARTS, NoteKind.BOOKING_ENDS, NoteKind.BOOKING_IDLE,
        NoteKind.BOOKING_RELEASED, NoteKind.FOREIGN_PROCESS, NoteKind.NODE_DRAINING,
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown event 'job\.exploded'"):
        parse_kinds("job.exploded")
