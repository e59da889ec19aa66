"""JobWaiter: long-poll semantics, in-process wake-ups and the cross-process version probe."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

from procplan.core.jobs import Job, JobState
from procplan.service.waiting import JobWaiter


class _Jobs:
    """One job and a global version counter, as the service would expose them."""

    def __init__(self) -> None:
        self.job = Job(id=1, user="ada", version=5)
        self.global_version = 5
        self.reads = 0

    def get(self, job_id: int) -> Job:
        self.reads += 1
        return self.job

    def version(self) -> int:
        return self.global_version

    def change(self, **fields: object) -> None:
        self.global_version += 1
        self.job = replace(self.job, version=self.global_version, **fields)  # type: ignore[arg-type]


def _run(coro: object) -> Job:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_returns_at_once_without_a_seen_version() -> None:
    jobs = _Jobs()
    waiter = JobWaiter(jobs.get, jobs.version)
    assert _run(waiter.wait(1, None, 10)).version == 5


def test_returns_at_once_when_the_job_already_moved_on() -> None:
    jobs = _Jobs()
    waiter = JobWaiter(jobs.get, jobs.version)
    assert _run(waiter.wait(1, 4, 10)).version == 5


def test_returns_at_once_for_a_finished_job() -> None:
    jobs = _Jobs()
    jobs.job = replace(jobs.job, state=JobState.CANCELLED)
    waiter = JobWaiter(jobs.get, jobs.version)
    started = time.monotonic()
    assert _run(waiter.wait(1, 5, 10)).state is JobState.CANCELLED
    assert time.monotonic() - started < 1


def test_times_out_with_the_unchanged_job() -> None:
    jobs = _Jobs()
    waiter = JobWaiter(jobs.get, jobs.version, probe_s=0.01)
    started = time.monotonic()
    job = _run(waiter.wait(1, 5, 0.1))
    assert job.version == 5
    assert 0.09 <= time.monotonic() - started < 2


def test_notify_from_another_thread_wakes_the_waiter() -> None:
    jobs = _Jobs()
    waiter = JobWaiter(jobs.get, jobs.version, probe_s=30)  # the probe alone would not wake it

    def later() -> None:
        time.sleep(0.05)
        jobs.change(state=JobState.RUNNING)
        waiter.notify()

    threading.Thread(target=later).start()
    started = time.monotonic()
    job = _run(waiter.wait(1, 5, 10))
    assert job.state is JobState.RUNNING
    assert time.monotonic() - started < 5


def test_a_change_by_another_process_is_found_by_the_probe() -> None:
    jobs = _Jobs()
    waiter = JobWaiter(jobs.get, jobs.version, probe_s=0.01)

    def later() -> None:
        time.sleep(0.05)
        jobs.change(state=JobState.RUNNING)  # committed elsewhere: nobody calls notify()

    threading.Thread(target=later).start()
    assert _run(waiter.wait(1, 5, 10)).state is JobState.RUNNING


def test_other_jobs_changes_do_not_end_the_wait() -> None:
    jobs = _Jobs()
    waiter = JobWaiter(jobs.get, jobs.version, probe_s=0.01)

    def other_job_changes() -> None:
        for _ in range(3):
            time.sleep(0.02)
            jobs.global_version += 1  # some other job moved
            waiter.notify()

    threading.Thread(target=other_job_changes).start()
    job = _run(waiter.wait(1, 5, 0.3))
    assert job.version == 5
    assert jobs.reads >= 2  # it looked, saw nothing for itself, kept waiting
