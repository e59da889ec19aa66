"""The agent knows its own GPU processes (issue #19): a job's descendants, and the processes
of a run that just ended, are the job's — never reported as nobody's."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping

from procplan.agent.host import OwnProcesses, process_rows
from procplan.agent.machine import ENDING_GRACE_S, AgentMachine
from procplan.agent.messages import (
    Exited,
    Heartbeat,
    HeartbeatDone,
    Launch,
    Launched,
    PollResult,
    Register,
    Registered,
    ShipLogs,
    Start,
    Tick,
)
from procplan.agent.protocol import JobSpec, Key, RunningJob
from procplan.core.readings import GpuProcess
from procplan.testing import FakeGpuReader

T0 = 1_790_000_000.0
JOB: Key = (17, 0)
LEADER = 500  # the launched process (its own session and process group)


class Table:
    """A process table: PID → (session id, parent PIDs); a PID not in it is gone."""

    def __init__(self, rows: Mapping[int, tuple[int, list[int]]]) -> None:
        self.rows = dict(rows)

    def session_of(self, pid: int) -> int | None:
        row = self.rows.get(pid)
        return None if row is None else row[0]

    def ancestors_of(self, pid: int) -> list[int]:
        row = self.rows.get(pid)
        return [] if row is None else list(row[1])


def tracker(table: Table) -> OwnProcesses:
    return OwnProcesses(session_of=table.session_of, ancestors_of=table.ancestors_of)


def owners(
    own: OwnProcesses,
    reader: FakeGpuReader,
    running: tuple[RunningJob, ...],
    ending: tuple[Key, ...] = (),
    sessions: Mapping[int, Key] | None = None,
) -> dict[int, tuple[int | None, bool]]:
    rows = own.rows(reader.processes(), {LEADER: JOB} if sessions is None else sessions,
                    running, ending)  # fmt: skip
    return {row["pid"]: (row["job_id"], row.get("ending", False)) for row in rows}


def test_descendants_are_the_jobs_by_session_or_by_parent_chain() -> None:
    reader = FakeGpuReader(2, host="n1")
    table = Table({
        LEADER: (LEADER, [1]),
        501: (LEADER, [LEADER, 1]),  # a child in the job's session
        502: (502, [501, LEADER, 1]),  # a grandchild that started its own session
        900: (900, [1]),  # somebody else's
    })  # fmt: skip
    for pid in (LEADER, 501, 502, 900):
        reader.add_process(0, pid, 100, "alice", "python")
    found = owners(tracker(table), reader, (RunningJob(17, 0, LEADER),))
    assert found == {LEADER: (17, False), 501: (17, False), 502: (17, False), 900: (None, False)}


def test_an_ended_runs_processes_are_ending_until_a_reading_no_longer_shows_them() -> None:
    reader = FakeGpuReader(2, host="n1")
    table = Table({LEADER: (LEADER, [1]), 502: (502, [LEADER, 1])})
    reader.add_process(0, LEADER, 100)
    reader.add_process(1, 502, 100)
    own = tracker(table)
    assert owners(own, reader, (RunningJob(17, 0, LEADER),)) == {LEADER: (17, False),
                                                                 502: (17, False)}  # fmt: skip
    # The job exited and the launcher forgot it; the processes are gone from the process
    # table, but the driver still lists them while their CUDA contexts are torn down.
    table.rows.clear()
    found = owners(own, reader, (), ending=(JOB,), sessions={})
    assert found == {LEADER: (17, True), 502: (17, True)}
    # A reading without them ends the memory: a reused PID later is not the job's.
    reader.clear_processes()
    assert owners(own, reader, (), ending=(JOB,), sessions={}) == {}
    reader.add_process(0, 502, 100)
    assert owners(own, reader, (), ending=(JOB,), sessions={}) == {502: (None, False)}


def test_after_the_grace_an_exited_runs_process_is_named_but_not_ending() -> None:
    reader = FakeGpuReader(1, host="n1")
    reader.add_process(0, 501, 100)
    table = Table({501: (LEADER, [LEADER])})
    # Exited, not yet acknowledged (still in the launcher's sessions), past the grace.
    assert owners(tracker(table), reader, ()) == {501: (17, False)}


def test_the_machine_names_the_runs_that_just_ended() -> None:
    machine = AgentMachine(2.0)
    spec = JobSpec(id=17, run=0, user="alice", command=("sleep", "1"))
    assert machine.handle(Start(T0)) == [Register()]
    machine.handle(Registered(T0, "s1", 2.0))
    machine.handle(HeartbeatDone(T0, "s1"))
    assert Launch(spec) in machine.handle(PollResult(T0, "s1", "v1", (spec,)))
    machine.handle(Launched(T0 + 0.5, JOB, LEADER))
    assert machine.ending == ()
    machine.handle(Exited(T0 + 1, JOB, 0, None))
    assert machine.handle(Tick(T0 + 2)) == [Heartbeat("s1", ()), ShipLogs("s1")]
    assert machine.ending == (JOB,)
    machine.handle(HeartbeatDone(T0 + 2, "s1"))
    machine.handle(PollResult(T0 + 2, "s1", "v2", ()))  # not desired any more
    assert machine.handle(Tick(T0 + 1 + ENDING_GRACE_S + 0.5))[0] == Heartbeat("s1", ())
    assert machine.ending == ()


def test_a_real_grandchild_in_its_own_session_is_the_jobs() -> None:
    """With the real process table: a job whose grandchild calls ``setsid``."""
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import os, time; os.setsid(); print(os.getpid(), flush=True); time.sleep(30)'])\n"
        "time.sleep(30)\n"
    )
    leader = subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    grandchild: int | None = None
    try:
        assert leader.stdout is not None
        grandchild = int(leader.stdout.readline())
        deadline = time.monotonic() + 10
        while os.getsid(grandchild) != grandchild and time.monotonic() < deadline:
            time.sleep(0.05)
        processes = [GpuProcess("GPU-x", grandchild, 10), GpuProcess("GPU-x", os.getpid(), 10)]
        sessions = {leader.pid: JOB}
        rows = OwnProcesses().rows(processes, sessions, (RunningJob(17, 0, leader.pid),))
        assert [(r["pid"], r["job_id"], r.get("ending", False)) for r in rows] == [
            (grandchild, 17, False),
            (os.getpid(), None, False),
        ]
        assert process_rows(processes[:1], sessions)[0]["job_id"] == 17  # the plain helper too
    finally:
        os.killpg(leader.pid, 9)
        leader.wait()
        if grandchild is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(grandchild, 9)
