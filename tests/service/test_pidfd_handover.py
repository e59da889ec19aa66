"""Instant hand-over (issue #15 item 5, ADR 0016): when the process of a client watched by PID
exits, its job ends and the next queued job gets the GPUs in the same moment, not at the
housekeeper's next poll.

In-process over the demo topology, the cycle running in its thread as in ``procplan server``.
The PID poll is pushed an hour away, so only the pidfd can end the job in time; the fake
clock never moves (no lease lapses either).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator

import pytest
from tests.conftest import LOCAL_NODE, admin_client, demo_settings

from procplan.core.jobs import Job, JobKind, JobRequest, JobState
from procplan.server import Composed, compose
from procplan.service.cycle import Scheduler
from procplan.service.cycle_ports import CycleClock
from procplan.service.leases import SRUN_CLIENT
from procplan.testing import FakeClock, wait_until

TIMEOUT = 30.0
NO_POLL_S = 3600.0
GPUS = 8  # the demo's local node

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfds here")


@pytest.fixture
def composed(sqlite_url: str, clock: FakeClock) -> Iterator[Composed]:
    built = compose(demo_settings(sqlite_url, pid_watch="pidfd"), clock=clock)
    built.housekeeper.pid_check_s = NO_POLL_S
    yield built
    built.scheduler.stop()
    built.housekeeper.close()
    built.store.dispose()


@pytest.fixture
def running(composed: Composed) -> Composed:
    """The cycle in its thread, holding the cycle lock (so submissions open pidfds)."""
    composed.scheduler.start()
    wait_until(lambda: composed.scheduler.lock.held, TIMEOUT, what="the cycle lock")
    return composed


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


def client_process(children: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["sleep", "30"])
    children.append(proc)
    return proc


def srun_job(composed: Composed, pid: int) -> Job:
    """What ``POST /acquire`` submits for ``pid``: the whole local node."""
    request = JobRequest(
        user="ada", kind=JobKind.INTERACTIVE, name=f"srun-{pid}", gpu_count=GPUS,
        node_id=LOCAL_NODE, pid=pid, host=composed.jobs.settings.local_host,
        extra={"client": SRUN_CLIENT, "pid_uid": os.getuid()},
    )  # fmt: skip
    return composed.jobs.submit(request)[0]


def wait_state(composed: Composed, job: Job, state: JobState) -> Job:
    return wait_until(
        lambda: (found := composed.jobs.get(job.id)).state is state and found,
        TIMEOUT,
        what=f"job {job.id} {state.value}",
    )


def test_a_dead_client_hands_its_gpus_over_at_once(
    running: Composed, children: list[subprocess.Popen[bytes]]
) -> None:
    holder, next_client = client_process(children), client_process(children)
    first = wait_state(running, srun_job(running, holder.pid), JobState.RUNNING)
    assert running.housekeeper.exits is not None and first.id in running.housekeeper.exits
    queued = srun_job(running, next_client.pid)
    assert running.jobs.get(queued.id).state is JobState.PENDING
    holder.kill()
    holder.wait()
    started = wait_state(running, queued, JobState.RUNNING)
    assert started.gpu_ids == first.gpu_ids
    ended = running.jobs.get(first.id)
    assert ended.state is JobState.COMPLETED  # srun execs: its PID ending is the end
    assert f"client process {holder.pid} exited" in ended.message
    assert first.id not in running.housekeeper.exits


def test_a_blocked_acquire_returns_when_the_holder_exits(
    running: Composed, children: list[subprocess.Popen[bytes]]
) -> None:
    """The same over HTTP, as ``srun`` sees it: its ``/acquire`` answers."""
    holder, waiting = client_process(children), client_process(children)
    with admin_client(running) as client:
        held = client.post("/acquire", json={"pid": holder.pid, "num_gpus": GPUS})
        assert held.status_code == 200, held.text
        answer: dict[str, object] = {}
        blocked = threading.Thread(
            target=lambda: answer.update(
                response=client.post("/acquire", json={"pid": waiting.pid, "num_gpus": 2})
            ),
            daemon=True,
        )
        blocked.start()
        wait_until(lambda: running.jobs.watched_here()[-1].pid == waiting.pid, TIMEOUT)
        holder.kill()
        holder.wait()
        blocked.join(TIMEOUT)
        assert not blocked.is_alive()
    response = answer["response"]
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    assert response.json()["gpus"] == "0,1"  # type: ignore[attr-defined]


def test_a_job_from_before_a_restart_is_watched_from_the_first_poll(
    composed: Composed, children: list[subprocess.Popen[bytes]]
) -> None:
    """Submitted where no cycle ran (another process, or before a restart): the housekeeper's
    next poll opens its pidfd, and from then on its exit is seen at once."""
    holder = client_process(children)
    job = srun_job(composed, holder.pid)
    exits = composed.housekeeper.exits
    assert exits is not None and job.id not in exits  # this process does not lead yet
    composed.scheduler.run_once()
    assert job.id in exits and composed.jobs.get(job.id).state is JobState.RUNNING
    holder.kill()
    holder.wait()
    wait_until(lambda: job.id not in exits, TIMEOUT, what="the pidfd to fire")
    composed.scheduler.run_once(housekeeping=False)  # the wake-up asked for housekeeping
    assert composed.jobs.get(job.id).state is JobState.COMPLETED


def test_poll_mode_opens_no_pidfd(sqlite_url: str, clock: FakeClock) -> None:
    built = compose(demo_settings(sqlite_url, pid_watch="poll"), clock=clock)
    try:
        assert built.housekeeper.exits is None
        built.housekeeper.watch(Job(id=1, user="ada", pid=os.getpid()))  # a no-op
    finally:
        built.store.dispose()


class CountingHousekeeping:
    def __init__(self) -> None:
        self.runs = 0

    def run(self) -> None:
        self.runs += 1

    def signal_preempted(self, jobs: object) -> None:
        return None


def test_wake_housekeeping_runs_phase_one_within_its_cadence(
    composed: Composed, clock: FakeClock
) -> None:
    housekeeping = CountingHousekeeping()
    scheduler = Scheduler(
        composed.scheduler.snapshots, composed.jobs, CycleClock(clock), composed.scheduler.lock,
        composed.jobs.settings.policy, housekeeping=housekeeping, housekeeping_s=3600.0,
    )  # fmt: skip
    scheduler.run_once(housekeeping=False)
    scheduler.run_once(housekeeping=False)
    assert housekeeping.runs == 1  # within housekeeping_s: skipped
    scheduler.wake_housekeeping()
    scheduler.run_once(housekeeping=False)
    assert housekeeping.runs == 2
    scheduler.run_once(housekeeping=False)
    assert housekeeping.runs == 2  # asked once, run once
