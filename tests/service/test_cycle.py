"""The scheduling cycle in-process: snapshot → plan → apply, leases, PID watch, preemption.

The demo cluster's local node ("ws", 8 simulated GPUs) runs the jobs; the clock is a FakeClock
so lease and grace deadlines are exact. ``run_once`` is called directly, except in the tests
of the background thread and of the cycle lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procplan.config import Settings
from procplan.core.jobs import Job, JobKind, JobRequest, JobState, Reason
from procplan.core.model import BookingRequest
from procplan.core.timeutil import HOUR
from procplan.server import Composed, compose
from procplan.store.leader import CycleLock
from procplan.testing import FakeClock

NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC
LOCAL = "ws"


@pytest.fixture
def built(tmp_path: Path) -> Iterator[Composed]:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'cycle.db'}",
        demo=True,
        local_node=LOCAL,
        min_runtime_s=60,
        preempt_grace_s=30,
        lease_ttl_s=30,
        batch_requires_agent=False,  # no agents here: the tests end batch jobs themselves
    )
    composed = compose(settings, clock=FakeClock(NOW))
    composed.housekeeper.pid_check_s = 0.0  # check PIDs on every cycle
    yield composed
    composed.scheduler.stop()
    composed.store.dispose()


def clock(built: Composed) -> FakeClock:
    return built.jobs.clock  # type: ignore[return-value]


def submit(built: Composed, **fields: object) -> Job:
    fields.setdefault("user", "ada")
    fields.setdefault("node_id", LOCAL)
    fields.setdefault("time_limit_s", HOUR)
    return built.jobs.submit(JobRequest(**fields))[0]  # type: ignore[arg-type]


def state(built: Composed, job: Job) -> Job:
    return built.jobs.get(job.id)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_job_with_free_gpus_starts_in_one_cycle(built: Composed) -> None:
    job = submit(built, gpu_count=2, kind=JobKind.INTERACTIVE)
    built.scheduler.run_once()
    running = state(built, job)
    assert running.state is JobState.RUNNING
    assert running.gpu_ids == ("ws-gpu0", "ws-gpu1")
    assert running.started_at == NOW
    assert running.lease_expires_at == NOW + 30


def test_a_waiting_job_gets_a_reason_and_an_estimate_then_the_freed_gpus(built: Composed) -> None:
    first = submit(built, gpu_count=8)
    built.scheduler.run_once()
    second = submit(built, gpu_count=2, user="bob")
    built.scheduler.run_once()
    waiting = state(built, second)
    assert waiting.state is JobState.PENDING
    assert waiting.reason is Reason.RESOURCES
    assert waiting.estimated_start == NOW + HOUR  # when the first job's time limit ends

    built.jobs.release(first.id, 0)
    built.scheduler.run_once()
    assert state(built, first).state is JobState.COMPLETED
    assert state(built, second).state is JobState.RUNNING


def test_a_lapsed_lease_frees_the_gpus(built: Composed) -> None:
    job = submit(built, gpu_count=8, kind=JobKind.INTERACTIVE)
    built.scheduler.run_once()
    clock(built).advance(31)
    waiting = submit(built, gpu_count=1, user="bob")
    built.scheduler.run_once()
    lost = state(built, job)
    assert lost.state is JobState.LOST
    assert "lease expired" in lost.message
    assert state(built, waiting).state is JobState.RUNNING


def test_heartbeats_keep_the_lease(built: Composed) -> None:
    job = submit(built, gpu_count=1, kind=JobKind.INTERACTIVE)
    built.scheduler.run_once()
    for _ in range(4):
        clock(built).advance(20)
        built.jobs.heartbeat(job.id)
        built.scheduler.run_once()
    assert state(built, job).state is JobState.RUNNING


def test_a_dead_client_pid_on_this_host_ends_its_job(built: Composed) -> None:
    host = built.jobs.settings.local_host
    pending_blocker = submit(built, gpu_count=8)
    built.scheduler.run_once()
    waiting = submit(built, gpu_count=1, kind=JobKind.INTERACTIVE, pid=dead_pid(), host=host)
    built.scheduler.run_once()
    withdrawn = state(built, waiting)
    assert withdrawn.state is JobState.CANCELLED
    assert "exited" in withdrawn.message
    assert state(built, pending_blocker).state is JobState.RUNNING


def test_a_live_pid_owned_by_this_process_keeps_its_job(built: Composed) -> None:
    host = built.jobs.settings.local_host
    job = submit(built, gpu_count=1, kind=JobKind.INTERACTIVE, pid=os.getpid(), host=host)
    built.scheduler.run_once()
    clock(built).advance(120)  # far past the lease: the live PID renews it
    built.scheduler.run_once()
    assert state(built, job).state is JobState.RUNNING


def test_an_srun_job_completes_when_its_pid_exits(built: Composed) -> None:
    host = built.jobs.settings.local_host
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        job = submit(
            built,
            gpu_count=1,
            kind=JobKind.INTERACTIVE,
            pid=proc.pid,
            host=host,
            extra={"client": "srun"},
        )
        built.scheduler.run_once()
        assert state(built, job).state is JobState.RUNNING
    finally:
        proc.kill()
        proc.wait()
    built.scheduler.run_once()
    assert state(built, job).state is JobState.COMPLETED


def test_a_foreign_booking_keeps_other_users_jobs_off_its_gpus(built: Composed) -> None:
    built.bookings.create(
        BookingRequest(
            node_id=LOCAL, start=NOW, end=NOW + 2 * HOUR, user="bob", label="B", gpu_count=8
        ),
        whole_hours=False,
    )
    ada = submit(built, gpu_count=1, user="ada")
    bob = submit(built, gpu_count=1, user="bob")
    built.scheduler.run_once()
    assert state(built, bob).state is JobState.RUNNING
    blocked = state(built, ada)
    assert blocked.state is JobState.PENDING
    assert blocked.reason is Reason.BOOKED
    assert blocked.estimated_start == NOW + 2 * HOUR


def test_preemption_requeues_the_batch_victim_after_the_grace(built: Composed) -> None:
    victim = submit(built, gpu_count=8, priority=0, user="bob", kind=JobKind.BATCH)
    built.scheduler.run_once()
    clock(built).advance(120)  # past min_runtime_s
    urgent = submit(built, gpu_count=8, priority=1000, user="ada")
    built.scheduler.run_once()
    marked = state(built, victim)
    assert marked.state is JobState.RUNNING
    assert marked.preempt_at == NOW + 120
    assert state(built, urgent).reason is Reason.PREEMPTING

    clock(built).advance(31)
    built.scheduler.run_once()
    requeued = state(built, victim)
    assert requeued.state is JobState.PENDING
    assert requeued.requeues == 1
    assert state(built, urgent).state is JobState.RUNNING


def test_the_background_thread_starts_a_submitted_job_promptly(built: Composed) -> None:
    built.scheduler.start()
    job = submit(built, gpu_count=1)
    deadline = time.monotonic() + 5
    while state(built, job).state is JobState.PENDING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state(built, job).state is JobState.RUNNING


def test_only_one_process_holds_the_cycle_lock(built: Composed) -> None:
    first = CycleLock(built.store)
    other_store = compose(
        Settings(db_url=str(built.store.engine.url), local_node=LOCAL), clock=FakeClock(NOW)
    )
    try:
        assert first.try_acquire()
        second = CycleLock(other_store.store)
        # flock is per open file description: a second descriptor conflicts even in-process
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        second.release()
    finally:
        other_store.store.dispose()


def test_an_open_ended_job_is_warned_then_preempted_by_a_foreign_booking(
    built: Composed, caplog: pytest.LogCaptureFixture
) -> None:
    job = submit(built, gpu_count=8, time_limit_s=None, kind=JobKind.INTERACTIVE)
    built.scheduler.run_once()
    assert state(built, job).state is JobState.RUNNING
    clock(built).advance(600)
    built.jobs.heartbeat(job.id)
    # Rule 4: a booking may cover an open-ended job's GPUs; rule 3 then preempts the job.
    built.bookings.create(
        BookingRequest(
            node_id=LOCAL,
            start=NOW + 900,
            end=NOW + 2 * HOUR,
            user="bob",
            label="B",
            gpu_ids=(f"{LOCAL}-gpu0",),
        ),
        whole_hours=False,
    )
    with caplog.at_level("WARNING", logger="procplan.cycle"):
        built.scheduler.run_once()
        built.scheduler.run_once()
    warnings = [r for r in caplog.records if "will be preempted" in r.getMessage()]
    assert len(warnings) == 1  # announced once, not every cycle
    assert state(built, job).preempt_at is None

    clock(built).set(NOW + 900)
    built.jobs.heartbeat(job.id)
    built.scheduler.run_once()
    assert state(built, job).preempt_at == NOW + 900
    clock(built).advance(31)
    built.jobs.heartbeat(job.id)  # the client is alive but did not stop in time
    built.scheduler.run_once()
    assert state(built, job).state is JobState.PREEMPTED
