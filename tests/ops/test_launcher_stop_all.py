"""``Launcher.stop_all`` (issue #16 item 8): the demo's embedded agents end the jobs they
started when the server stops: SIGTERM to each job's process group, SIGKILL to whatever
ignores it after the grace period."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil

from procplan.agent.launcher import Launcher
from procplan.agent.protocol import JobSpec
from procplan.client import current_user
from procplan.testing import wait_until

PY = sys.executable
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "open('ignoring', 'w').close(); time.sleep(600)"
)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_all_terminates_then_kills_every_job(tmp_path: Path) -> None:
    launcher = Launcher(tmp_path / "state", current_user(), allow_root_jobs=True)
    me = current_user()
    polite = launcher.launch(JobSpec(id=1, run=0, command=("sleep", "600"), user=me,
                                     workdir=str(tmp_path)))  # fmt: skip
    stubborn = launcher.launch(JobSpec(id=2, run=0, command=(PY, "-c", STUBBORN), user=me,
                                       workdir=str(tmp_path)))  # fmt: skip
    wait_until(lambda: (tmp_path / "ignoring").exists(), 20, 0.02)  # SIGTERM is ignored now
    started = time.monotonic()
    stopped = launcher.stop_all(grace_s=0.5)
    took = time.monotonic() - started
    assert sorted(stopped) == [(1, 0), (2, 0)]
    assert gone(polite) and gone(stubborn)
    assert 0.4 < took < 3.0  # the stubborn one needed the SIGKILL after the grace period
    assert launcher.stop_all(grace_s=0.5) == []  # nothing left to stop
