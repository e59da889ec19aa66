"""Whose process a PID is, and the PID watch's refusal to signal what is not the job's.

Real processes of this test's own user; signalling another uid's process needs a second
account and is covered as root in ``tests/agent/test_launcher_identity.py``.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from procplan.core.jobs import Job
from procplan.service import leases
from procplan.service.leases import PidWatch, expected_uid
from procplan.service.processes import process_owner_uid
from procplan.testing import wait_until

UID = os.getuid()


def my_name() -> str:
    try:
        return pwd.getpwuid(UID).pw_name
    except KeyError:
        pytest.skip("this uid has no user name here")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield proc
    proc.kill()
    proc.wait()


def ended_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_process_owner_uid() -> None:
    assert process_owner_uid(os.getpid()) == UID
    assert process_owner_uid(ended_pid()) is None
    assert process_owner_uid(0) is None and process_owner_uid(-5) is None


def test_a_zombie_has_no_owner() -> None:
    zombie = subprocess.Popen(["true"])
    try:
        wait_until(lambda: process_owner_uid(zombie.pid) is None)  # exited, not yet reaped
        assert zombie.returncode is None
    finally:
        zombie.wait()


def test_the_expected_uid_of_a_job() -> None:
    assert expected_uid(Job(id=1, user="x", extra={"pid_uid": 1234})) == 1234
    assert expected_uid(Job(id=1, user="x", extra={"pid_uid": "1234"})) == 1234
    assert expected_uid(Job(id=1, user=my_name())) == UID
    assert expected_uid(Job(id=1, user="uid:4321")) == 4321  # /acquire's nameless owner
    assert expected_uid(Job(id=1, user="no-such-user-here")) is None
    assert expected_uid(Job(id=1, user="no-such-user-here", extra={"pid_uid": True})) is None


def test_the_jobs_own_process_is_signalled(sleeper: subprocess.Popen[bytes]) -> None:
    PidWatch().signal(Job(id=1, user=my_name(), pid=sleeper.pid), signal.SIGTERM)
    assert sleeper.wait(10) == -signal.SIGTERM


@pytest.mark.parametrize(
    "job_fields",
    [
        {"user": "no-such-user-here"},  # no uid to compare with: nothing is sent
        {"user": "whoever", "extra": {"pid_uid": UID + 1}},
    ],
)
def test_a_process_of_another_uid_is_not_signalled(
    sleeper: subprocess.Popen[bytes],
    job_fields: dict[str, object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = PidWatch()
    job = Job(id=1, pid=sleeper.pid, **job_fields)
    watch.signal(job, signal.SIGTERM)
    time.sleep(0.1)
    assert sleeper.poll() is None
    assert watch.alive(job)
    assert any("not signalling" in r.getMessage() for r in caplog.records)


def test_the_server_itself_is_never_signalled() -> None:
    received: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, _frame: received.append(signum))
    try:
        PidWatch().signal(Job(id=1, user=my_name(), pid=os.getpid()), signal.SIGUSR1)
        time.sleep(0.1)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert received == []


def test_nor_its_parent_nor_init(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(leases.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    watch = PidWatch()
    parent_uid = process_owner_uid(os.getppid())
    for job_id, pid, uid in ((1, os.getppid(), parent_uid), (2, 1, 0)):
        watch.signal(Job(id=job_id, user="x", pid=pid, extra={"pid_uid": uid}), signal.SIGKILL)
    assert sent == []
