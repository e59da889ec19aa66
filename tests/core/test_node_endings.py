"""Freed GPUs are free (issue #19): the processes of a job that just ended are ``ending``, not
foreign, in any report taken before one reading interval after the end."""

from __future__ import annotations

from typing import Any

import pytest

from procplan.core.jobs import Job, JobKind, JobState
from procplan.core.model import Booking
from procplan.core.node_endings import (
    MAX_ENDING_S,
    EndedJob,
    attributions,
    in_handover,
    settle_endings,
)
from procplan.core.node_reports import ReportedProcess
from procplan.core.node_usage import ProcessKind, classify, foreign_gpus, unbooked_gpus

UUIDS = {f"GPU-{i}": f"n1-gpu{i}" for i in range(4)}
END = 1000.0
INTERVAL = 2.0
J7 = EndedJob(7, frozenset({"n1-gpu0", "n1-gpu1"}), END)


def process(gpu: int, pid: int, job_id: int | None = None, **kw: Any) -> ReportedProcess:
    return ReportedProcess(
        gpu_uuid=f"GPU-{gpu}",
        pid=pid,
        used_memory_mb=100,
        user=kw.get("user", "alice"),
        command="python train.py",
        job_id=job_id,
        ancestors=(),
        ending=kw.get("ending", False),
    )


def running(job_id: int, gpus: tuple[int, ...]) -> Job:
    return Job(
        id=job_id, user="carol", kind=JobKind.BATCH, state=JobState.RUNNING,
        node_ids=("n1",), gpu_ids=tuple(f"n1-gpu{g}" for g in gpus),
    )  # fmt: skip


def settled(
    procs: list[ReportedProcess],
    taken_at: float,
    jobs: tuple[Job, ...] = (),
    previous: dict[int, int | None] | None = None,
    bookings: tuple[Booking, ...] = (),
) -> list[tuple[int, ProcessKind, int | None]]:
    classified = classify(procs, UUIDS, "host", list(jobs), list(bookings))
    result = settle_endings(classified, [J7], taken_at, INTERVAL, previous)
    assert foreign_gpus(result) == {
        c.gpu_id for c in result if c.kind not in (ProcessKind.JOB, ProcessKind.ENDING)
    }
    assert not unbooked_gpus(c for c in result if c.kind is ProcessKind.ENDING)
    return [(c.process.pid, c.kind, c.job_id) for c in result]


@pytest.mark.parametrize(
    ("taken_at", "expected"),
    [
        (END - 5, True),  # taken before the end: it cannot know
        (END, True),
        (END + INTERVAL, True),  # within the clock's resolution of one interval
        (END + INTERVAL + 0.99, True),
        (END + INTERVAL + 1, False),  # a full interval after the end: may flag
        (END + 60, False),
    ],
)
def test_the_handover_window_is_one_reading_interval(taken_at: float, expected: bool) -> None:
    assert in_handover(END, taken_at, INTERVAL) is expected
    assert in_handover(END, taken_at, INTERVAL, resolution_s=0.0) is (taken_at < END + INTERVAL)


def test_a_lingering_process_of_the_ended_job_is_ending_not_foreign() -> None:
    # The agent still names the job (it has not forgotten it yet).
    assert settled([process(0, 10, job_id=7)], END + 1) == [(10, ProcessKind.ENDING, 7)]
    # The agent forgot it; the previous report attributed the PID to the job.
    assert settled([process(1, 11)], END + 1, previous={11: 7}) == [(11, ProcessKind.ENDING, 7)]
    # Neither: a process nobody saw before on a GPU the job held.
    assert settled([process(1, 12)], END + 2) == [(12, ProcessKind.ENDING, 7)]


def test_a_reading_a_full_interval_after_the_end_flags_it() -> None:
    late = END + INTERVAL + 1
    assert settled([process(0, 10, job_id=7)], late) == [(10, ProcessKind.UNBOOKED, None)]
    assert settled([process(1, 12)], late) == [(12, ProcessKind.UNBOOKED, None)]


def test_the_agents_ending_mark_holds_until_the_cap() -> None:
    proc = process(0, 10, job_id=7, ending=True)
    assert settled([proc], END + 10) == [(10, ProcessKind.ENDING, 7)]
    assert settled([proc], END + MAX_ENDING_S) == [(10, ProcessKind.UNBOOKED, None)]
    # The mark counts only for the job it names.
    assert settled([process(0, 11, job_id=8, ending=True)], END + 10)[0][1] is ProcessKind.UNBOOKED


def test_other_processes_are_left_as_they_were() -> None:
    # A process that was somebody else's before stays foreign, even within the window.
    assert settled([process(0, 20, user="bob")], END + 1, previous={20: None}) == [
        (20, ProcessKind.UNBOOKED, None)
    ]
    # On a GPU the ended job did not hold.
    assert settled([process(3, 21)], END + 1) == [(21, ProcessKind.UNBOOKED, None)]
    # The next job's own process on the freed GPU is the next job's.
    assert settled([process(0, 22, job_id=9)], END + 1, jobs=(running(9, (0,)),)) == [
        (22, ProcessKind.JOB, 9)
    ]
    # A booking owner's process is theirs.
    booking = Booking(1, "n1", ("n1-gpu0",), 0, 10**9, "bob", "bob")
    assert settled([process(0, 23, user="bob")], END + 1, bookings=(booking,)) == [
        (23, ProcessKind.BOOKED, None)
    ]


def test_nothing_ended_changes_nothing() -> None:
    classified = classify([process(0, 10)], UUIDS, "host", [], [])
    assert settle_endings(classified, [], END, INTERVAL) == classified


def test_attributions_of_a_stored_report() -> None:
    triples = [(1, "job", 7), (2, "ending", 7), (3, "stray", 8), (4, "unbooked", None),
               (5, "booked", None)]  # fmt: skip
    assert attributions(triples) == {1: 7, 2: 7, 3: 8, 4: None, 5: None}
