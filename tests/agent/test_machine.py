"""The agent state machine, driven by tables of (event → exact actions) with a fake time."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from procplan.agent.machine import (
    LOST_MESSAGE,
    SIGKILL,
    SIGTERM,
    AgentMachine,
)
from procplan.agent.messages import (
    Action,
    Adopted,
    Event,
    EventsAcked,
    EventsFailed,
    Exited,
    Fatal,
    Forget,
    Heartbeat,
    HeartbeatDone,
    HeartbeatFailed,
    Launch,
    Launched,
    LaunchFailed,
    Poll,
    PollFailed,
    PollResult,
    Register,
    Registered,
    RegisterFailed,
    Report,
    ShipLogs,
    Signal,
    Start,
    Tick,
)
from procplan.agent.protocol import (
    ExitedEvent,
    GpuRef,
    JobSpec,
    RunningJob,
    SpecError,
    StartedEvent,
    StopOrder,
    parse_spec,
)

T0 = 1_790_000_000.0
STOP = "stopped"
S1 = "session-1"


def spec(job_id: int = 17, run: int = 0, **fields: Any) -> JobSpec:
    return JobSpec(id=job_id, run=run, user="alice", command=("python", "train.py"), **fields)


def play(machine: AgentMachine, steps: list[tuple[Event, list[Action]]]) -> None:
    """Feed each event and check the exact actions it yields."""
    for number, (event, expected) in enumerate(steps):
        assert machine.handle(event) == expected, f"step {number}: {event}"


def registered(interval: float = 2.0) -> AgentMachine:
    machine = AgentMachine(interval)
    play(
        machine,
        [
            (Start(T0), [Register()]),
            (Registered(T0, S1, interval), [Heartbeat(S1, ()), Poll(S1, None)]),
            (HeartbeatDone(T0, S1), []),
        ],
    )
    return machine


def running(job: JobSpec, pid: int = 120, at: float = T0 + 1) -> AgentMachine:
    """A registered machine that launched ``job`` and had its start acknowledged."""
    machine = registered()
    started = StartedEvent(job.id, job.run, pid, at)
    play(
        machine,
        [
            (PollResult(at, S1, "v1", (job,)), [Poll(S1, "v1"), Launch(job)]),
            (Launched(at, job.key, pid), [Report(S1, (started,))]),
            (EventsAcked(at, (started,)), []),
        ],
    )
    return machine


# -- registration ---------------------------------------------------------------------------


def test_registration_backs_off_1_2_4_up_to_30_seconds() -> None:
    machine = AgentMachine()
    assert machine.handle(Start(T0)) == [Register()]
    now = T0
    for delay in (1, 2, 4, 8, 16, 30, 30):
        assert machine.handle(RegisterFailed(now, None, None, "connection refused")) == []
        assert machine.next_wakeup() == now + delay
        assert machine.handle(Tick(now + delay - 0.5)) == []
        now += delay
        assert machine.handle(Tick(now)) == [Register()]
        assert machine.next_wakeup() is None  # waiting for the answer only
    assert machine.handle(Registered(now, S1, 2.0)) == [Heartbeat(S1, ()), Poll(S1, None)]
    # Success resets the backoff: the next failure waits 1 s again.
    play(machine, [(HeartbeatFailed(now, S1, 409, "unknown_session"), [Register()])])
    machine.handle(RegisterFailed(now, 503, None, "busy"))
    assert machine.next_wakeup() == now + 1


def test_node_taken_is_retried_with_backoff() -> None:
    machine = AgentMachine()
    machine.handle(Start(T0))
    assert machine.handle(RegisterFailed(T0, 409, "node_taken", "node served elsewhere")) == []
    assert machine.handle(Tick(T0 + 1)) == [Register()]


@pytest.mark.parametrize(
    "event",
    [
        RegisterFailed(T0, 401, "unauthorized", "agent token missing or wrong"),
        HeartbeatFailed(T0, S1, 401, "unauthorized", "agent token missing or wrong"),
        PollFailed(T0, S1, 401, "unauthorized", "agent token missing or wrong"),
        EventsFailed(T0, S1, 401, "unauthorized", "agent token missing or wrong"),
    ],
)
def test_401_is_fatal_and_ends_everything(event: Event) -> None:
    machine = AgentMachine()
    machine.handle(Start(T0))
    if not isinstance(event, RegisterFailed):
        machine.handle(Registered(T0, S1, 2.0))
    message = "the server refused the agent token: agent token missing or wrong"
    assert machine.handle(event) == [Fatal(message)]
    assert machine.handle(Tick(T0 + 100)) == []
    assert machine.handle(PollResult(T0, S1, "v", (spec(),))) == []


def test_interval_comes_from_the_register_answer() -> None:
    machine = AgentMachine(interval_s=2.0)
    machine.handle(Start(T0))
    machine.handle(Registered(T0, S1, 5.0))
    machine.handle(HeartbeatDone(T0, S1))
    assert machine.next_wakeup() == T0 + 5


# -- heartbeats -----------------------------------------------------------------------------


def test_heartbeat_every_interval_and_never_two_at_once() -> None:
    machine = registered()
    play(
        machine,
        [
            (Tick(T0 + 1.9), []),
            (Tick(T0 + 2), [Heartbeat(S1, ())]),
            (Tick(T0 + 4.5), []),  # the previous one is still in flight
            (HeartbeatDone(T0 + 4.6, S1), []),
            (Tick(T0 + 4.6), [Heartbeat(S1, ())]),
            (HeartbeatDone(T0 + 4.7, S1), []),
            (Tick(T0 + 6.5), []),
            (Tick(T0 + 6.6), [Heartbeat(S1, ())]),
        ],
    )


def test_heartbeat_lists_running_jobs_and_ships_their_logs() -> None:
    job = spec()
    machine = running(job, pid=4242)
    machine.handle(Tick(T0 + 2))  # heartbeat at T0 + 2 ...
    machine.handle(HeartbeatDone(T0 + 2, S1))
    assert machine.handle(Tick(T0 + 4)) == [Heartbeat(S1, (RunningJob(17, 0, 4242),)), ShipLogs(S1)]


def test_failed_heartbeats_reregister_after_three_and_jobs_keep_running() -> None:
    job = spec()
    machine = running(job)
    beat = Heartbeat(S1, (RunningJob(17, 0, 120),))
    play(
        machine,
        [
            (Tick(T0 + 2), [beat, ShipLogs(S1)]),
            (HeartbeatFailed(T0 + 2, S1, None, None, "refused"), []),
            (Tick(T0 + 4), [beat, ShipLogs(S1)]),
            (HeartbeatFailed(T0 + 4, S1, 502, None, "bad gateway"), []),
            (Tick(T0 + 6), [beat, ShipLogs(S1)]),
            (HeartbeatFailed(T0 + 6, S1, None, None, "refused"), [Register()]),
            (RegisterFailed(T0 + 6, None, None, "refused"), []),
            # The job ends while the server is away: nothing is reported yet, nothing killed.
            (Exited(T0 + 6.5, job.key, 0, None), []),
            (Tick(T0 + 7), [Register()]),
        ],
    )
    exited = ExitedEvent(17, 0, 0, None, T0 + 6.5, "exited", "")
    play(
        machine,
        [
            (Registered(T0 + 8, "s2", 2.0), [
                Heartbeat("s2", ()), ShipLogs("s2"), Poll("s2", "v1"), Report("s2", (exited,)),
            ]),
            (EventsAcked(T0 + 8, (exited,)), [Forget(job.key)]),
        ],
    )  # fmt: skip


def test_unknown_session_reregisters_without_touching_jobs() -> None:
    job = spec()
    machine = running(job)
    play(
        machine,
        [
            (Tick(T0 + 2), [Heartbeat(S1, (RunningJob(17, 0, 120),)), ShipLogs(S1)]),
            (HeartbeatFailed(T0 + 2, S1, 409, "unknown_session", "register again"), [Register()]),
            # Answers to the old session are ignored, the job is never signalled.
            (PollFailed(T0 + 2, S1, 409, "unknown_session"), []),
            (PollResult(T0 + 2, S1, "v9", ()), []),
            (Tick(T0 + 3), []),
            (Registered(T0 + 3, "s2", 2.0), [
                Heartbeat("s2", (RunningJob(17, 0, 120),)), ShipLogs("s2"), Poll("s2", "v1"),
            ]),
            (PollResult(T0 + 3, "s2", "v1", (job,)), [Poll("s2", "v1")]),
        ],
    )  # fmt: skip


def test_unknown_node_404_reregisters() -> None:
    machine = registered()
    assert machine.handle(PollFailed(T0, S1, 404, "unknown_node")) == [Register()]


# -- polling and convergence ------------------------------------------------------------------


def test_poll_failures_back_off_and_a_result_polls_again_at_once() -> None:
    machine = registered()
    play(
        machine,
        [
            (PollFailed(T0 + 1, S1, 500, None, "oops"), []),
            (Tick(T0 + 1.5), []),
            (Tick(T0 + 2), [Heartbeat(S1, ()), Poll(S1, None)]),
            (PollFailed(T0 + 2, S1, 400, "bad_request", "?"), []),
            (Tick(T0 + 3.9), []),
            (Tick(T0 + 4), [Poll(S1, None)]),
            (PollResult(T0 + 4, S1, "v2", ()), [Poll(S1, "v2")]),
        ],
    )


def test_desired_jobs_are_launched_and_their_start_reported() -> None:
    a, b = spec(17), spec(18, run=2, gpus=(GpuRef("n-gpu0", 0),))
    machine = registered()
    started_a = StartedEvent(17, 0, 500, T0 + 2)
    started_b = StartedEvent(18, 2, 501, T0 + 3)
    play(
        machine,
        [
            (PollResult(T0 + 1, S1, "v1", (a, b)), [Poll(S1, "v1"), Launch(a), Launch(b)]),
            (PollResult(T0 + 1.5, S1, "v2", (a, b)), [Poll(S1, "v2")]),  # launching: not twice
            (Launched(T0 + 2, a.key, 500), [Report(S1, (started_a,))]),
            (Launched(T0 + 3, b.key, 501), []),  # one report in flight at a time
            (EventsAcked(T0 + 3, (started_a,)), [Report(S1, (started_b,))]),
            (EventsAcked(T0 + 3, (started_b,)), []),
        ],
    )


def test_a_job_no_longer_desired_gets_sigterm_and_its_exit_says_stopped() -> None:
    job = spec(grace_s=10)
    machine = running(job)
    exited = ExitedEvent(17, 0, None, SIGTERM, T0 + 6, "stopped",
                         "the job no longer runs on this node (cancelled or moved)")  # fmt: skip
    play(
        machine,
        [
            (PollResult(T0 + 5, S1, "v2", ()), [Poll(S1, "v2"), Signal(job.key, SIGTERM, STOP)]),
            (PollResult(T0 + 5.5, S1, "v3", ()), [Poll(S1, "v3")]),  # not signalled twice
            (Exited(T0 + 6, job.key, None, SIGTERM), [Report(S1, (exited,))]),
            (Tick(T0 + 15), [Heartbeat(S1, ()), ShipLogs(S1)]),  # no SIGKILL: the job is gone
        ],
    )  # fmt: skip


def test_sigkill_follows_when_the_job_ignores_sigterm() -> None:
    job = spec(grace_s=10)
    machine = running(job)
    machine.handle(HeartbeatDone(T0, S1))
    play(
        machine,
        [
            (PollResult(T0 + 5, S1, "v2", ()), [Poll(S1, "v2"), Signal(job.key, SIGTERM, STOP)]),
        ],
    )  # fmt: skip
    beat = [Heartbeat(S1, (RunningJob(17, 0, 120),)), ShipLogs(S1)]
    for t in (2, 4, 6, 8, 10, 12, 14):
        assert machine.handle(Tick(T0 + t)) == beat
        machine.handle(HeartbeatDone(T0 + t, S1))
    assert machine.next_wakeup() == T0 + 15
    assert machine.handle(Tick(T0 + 15)) == [Signal(job.key, SIGKILL, "stopped")]
    assert machine.handle(Tick(T0 + 15.5)) == []
    exited = ExitedEvent(17, 0, None, SIGKILL, T0 + 15.6, "stopped",
                         "the job no longer runs on this node (cancelled or moved)")  # fmt: skip
    assert machine.handle(Exited(T0 + 15.6, job.key, None, SIGKILL)) == [Report(S1, (exited,))]
    assert machine.handle(EventsAcked(T0 + 16, (exited,))) == [Forget(job.key)]


def test_a_job_marked_stop_is_stopped_with_its_reason_and_grace() -> None:
    job = spec(grace_s=5)
    machine = running(job)
    stopping = dataclasses.replace(job, stop=StopOrder("preempted: booking 7", T0 + 3))
    play(
        machine,
        [
            (PollResult(T0 + 2, S1, "v2", (stopping,)), [Poll(S1, "v2")]),  # SIGTERM at T0 + 3
            (Tick(T0 + 3), [Heartbeat(S1, (RunningJob(17, 0, 120),)), ShipLogs(S1),
                            Signal(job.key, SIGTERM, "stopped")]),
            (Tick(T0 + 7.9), []),
            (Tick(T0 + 8), [Signal(job.key, SIGKILL, "stopped")]),
        ],
    )  # fmt: skip
    exited = ExitedEvent(17, 0, 143, None, T0 + 8.1, "stopped", "preempted: booking 7")
    assert machine.handle(Exited(T0 + 8.1, job.key, 143, None)) == [Report(S1, (exited,))]


def test_time_limit_sends_sigterm_at_the_deadline_and_sigkill_after_grace() -> None:
    job = spec(deadline=T0 + 1.5, grace_s=30)
    machine = running(job)
    assert machine.next_wakeup() == T0 + 1.5
    play(
        machine,
        [
            (Tick(T0 + 1.5), [Signal(job.key, SIGTERM, "time_limit")]),
            (Tick(T0 + 2), [Heartbeat(S1, (RunningJob(17, 0, 120),)), ShipLogs(S1)]),
            (HeartbeatDone(T0 + 2, S1), []),
        ],
    )
    for t in range(4, 32, 2):
        machine.handle(Tick(T0 + t))
        machine.handle(HeartbeatDone(T0 + t, S1))
    assert machine.next_wakeup() == T0 + 31.5
    assert machine.handle(Tick(T0 + 31.5)) == [Signal(job.key, SIGKILL, "time_limit")]
    exited = ExitedEvent(
        17, 0, None, SIGKILL, T0 + 32, "time_limit", "the job reached its time limit"
    )
    assert machine.handle(Exited(T0 + 32, job.key, None, SIGKILL)) == [Report(S1, (exited,))]


def test_deadlines_are_read_on_the_server_clock() -> None:
    machine = AgentMachine()
    machine.handle(Start(T0))
    machine.handle(Registered(T0, S1, 2.0, server_time=T0 + 100))  # server 100 s ahead
    machine.handle(HeartbeatDone(T0, S1))
    job = spec(deadline=T0 + 110)
    machine.handle(PollResult(T0, S1, "v1", (job,)))
    assert machine.handle(Launched(T0, job.key, 9)) == [
        Report(S1, (StartedEvent(17, 0, 9, T0 + 100),))
    ]
    assert machine.next_wakeup() == T0 + 2
    machine.handle(Tick(T0 + 2))
    machine.handle(HeartbeatDone(T0 + 2, S1))
    assert machine.next_wakeup() == T0 + 4
    machine.handle(Tick(T0 + 4))
    machine.handle(HeartbeatDone(T0 + 4, S1))
    machine.handle(Tick(T0 + 6))
    machine.handle(HeartbeatDone(T0 + 6, S1))
    machine.handle(Tick(T0 + 8))
    machine.handle(HeartbeatDone(T0 + 8, S1))
    term = Signal(job.key, SIGTERM, "time_limit")
    assert machine.handle(Tick(T0 + 10)) == [
        Heartbeat(S1, (RunningJob(17, 0, 9),)),
        ShipLogs(S1),
        term,
    ]


def test_an_exited_job_is_never_launched_again() -> None:
    job = spec()
    machine = running(job)
    exited = ExitedEvent(17, 0, 0, None, T0 + 3, "exited", "")
    play(
        machine,
        [
            (Exited(T0 + 3, job.key, 0, None), [Report(S1, (exited,))]),
            (PollResult(T0 + 3, S1, "v1", (job,)), [Poll(S1, "v1")]),  # the server lags
            (EventsAcked(T0 + 4, (exited,)), [Forget(job.key)]),
            (PollResult(T0 + 4, S1, "v1", (job,)), [Poll(S1, "v1")]),
            # A requeued run of the same job is a new run: it starts.
            (PollResult(T0 + 5, S1, "v2", (spec(run=1),)), [Poll(S1, "v2"), Launch(spec(run=1))]),
        ],
    )  # fmt: skip


def test_a_launched_job_we_do_not_know_is_reported_lost_once() -> None:
    job = spec(launched=True, launched_pid=77)
    machine = registered()
    lost = ExitedEvent(17, 0, None, None, T0 + 1, "lost", LOST_MESSAGE)
    play(
        machine,
        [
            (PollResult(T0 + 1, S1, "v1", (job,)), [Poll(S1, "v1"), Report(S1, (lost,))]),
            (PollResult(T0 + 1.2, S1, "v1", (job,)), [Poll(S1, "v1")]),
            (EventsAcked(T0 + 2, (lost,)), [Forget(job.key)]),
        ],
    )


def test_a_job_that_cannot_start_is_reported_launch_failed() -> None:
    job = spec()
    machine = registered()
    failed = ExitedEvent(17, 0, None, None, T0 + 1, "launch_failed", "no such directory")
    play(
        machine,
        [
            (PollResult(T0 + 1, S1, "v1", (job,)), [Poll(S1, "v1"), Launch(job)]),
            (LaunchFailed(T0 + 1, job.key, "no such directory"), [Report(S1, (failed,))]),
            (PollResult(T0 + 1.5, S1, "v1", (job,)), [Poll(S1, "v1")]),
        ],
    )


def test_jobs_stopped_or_expired_before_launch_are_not_started() -> None:
    stopped = spec(17, stop=StopOrder("cancelled", None))
    expired = spec(18, deadline=T0)
    machine = registered()
    events = (
        ExitedEvent(17, 0, None, None, T0 + 1, "stopped", "stopped before it started: cancelled"),
        ExitedEvent(18, 0, None, None, T0 + 1, "time_limit",
                    "its time limit passed before it started"),
    )  # fmt: skip
    answer = PollResult(T0 + 1, S1, "v1", (stopped, expired))
    assert machine.handle(answer) == [Poll(S1, "v1"), Report(S1, events[:1])]
    assert machine.pending_events == events


def test_a_job_removed_while_launching_is_stopped_once_it_has_a_pid() -> None:
    job = spec()
    machine = registered()
    started = StartedEvent(17, 0, 300, T0 + 2)
    play(
        machine,
        [
            (PollResult(T0 + 1, S1, "v1", (job,)), [Poll(S1, "v1"), Launch(job)]),
            (PollResult(T0 + 1.5, S1, "v2", ()), [Poll(S1, "v2")]),
            (Launched(T0 + 2, job.key, 300), [Signal(job.key, SIGTERM, STOP),
                                              Report(S1, (started,))]),
        ],
    )  # fmt: skip


# -- job events ----------------------------------------------------------------------------------


def test_events_are_retried_with_backoff_until_acknowledged() -> None:
    job = spec()
    machine = running(job)
    exited = ExitedEvent(17, 0, 3, None, T0 + 1.5, "exited", "")
    report = Report(S1, (exited,))
    play(
        machine,
        [
            (Exited(T0 + 1.5, job.key, 3, None), [report]),
            (EventsFailed(T0 + 1.5, S1, 503, None, "busy"), []),
            (Tick(T0 + 2), [Heartbeat(S1, ()), ShipLogs(S1)]),  # ships the job's last log bytes
            (Tick(T0 + 2.5), [report]),
            (EventsFailed(T0 + 2.5, S1, None, None, "refused"), []),
            (Tick(T0 + 4.4), []),
            (Tick(T0 + 4.5), [report]),
            (EventsAcked(T0 + 4.6, (exited,)), [Forget(job.key)]),
            (Tick(T0 + 10), []),
        ],
    )


def test_events_answered_unknown_session_reregister() -> None:
    machine = running(spec())
    exited = ExitedEvent(17, 0, 0, None, T0 + 2, "exited", "")
    play(
        machine,
        [
            (Exited(T0 + 2, (17, 0), 0, None), [Report(S1, (exited,))]),
            (EventsFailed(T0 + 2, S1, 409, "unknown_session"), [Register()]),
            (Registered(T0 + 3, "s2", 2.0), [Heartbeat("s2", ()), ShipLogs("s2"), Poll("s2", "v1"),
                                             Report("s2", (exited,))]),
        ],
    )  # fmt: skip


# -- adoption -----------------------------------------------------------------------------------


def test_adopted_jobs_are_kept_when_desired_and_stopped_when_not() -> None:
    kept, known, gone = spec(17, launched=True), spec(18), spec(19)
    machine = AgentMachine()
    for key, pid in ((kept.key, 100), (known.key, 101), (gone.key, 102)):
        assert machine.handle(Adopted(T0, key, pid, T0 - 50)) == []
    machine.handle(Start(T0))
    jobs = (RunningJob(17, 0, 100), RunningJob(18, 0, 101), RunningJob(19, 0, 102))
    assert machine.handle(Registered(T0, S1, 2.0)) == [
        Heartbeat(S1, jobs),
        ShipLogs(S1),
        Poll(S1, None),
    ]
    # ``known`` is desired but the server never heard it started: report its start.
    started = StartedEvent(18, 0, 101, T0 - 50)
    assert machine.handle(PollResult(T0 + 1, S1, "v1", (kept, known))) == [
        Poll(S1, "v1"), Signal(gone.key, SIGTERM, "stopped"), Report(S1, (started,)),
    ]  # fmt: skip
    message = "exit status unknown: the agent adopted this job after a restart"
    unknown = ExitedEvent(17, 0, None, None, T0 + 2, "exited", message)
    machine.handle(EventsAcked(T0 + 1, (started,)))
    assert machine.handle(Exited(T0 + 2, kept.key, None, None)) == [Report(S1, (unknown,))]


# -- the shell's wakeups -----------------------------------------------------------------------


def test_next_wakeup_always_moves_forward() -> None:
    """Ticking at each wakeup consumes it: the shell never spins."""
    job = spec(deadline=T0 + 7, grace_s=3)
    machine = running(job)
    now = T0 + 1
    for _ in range(50):
        wake = machine.next_wakeup()
        assert wake is not None and wake > now
        now = wake
        for action in machine.handle(Tick(now)):
            if isinstance(action, Heartbeat):
                machine.handle(HeartbeatDone(now, S1))


# -- the wire ---------------------------------------------------------------------------------


def test_parse_spec_reads_the_adr_example() -> None:
    raw = {
        "id": 17, "run": 0, "user": "alice", "name": "train", "command": ["python", "train.py"],
        "workdir": "/home/alice/x", "env": [["K", "V"]],
        "gpus": [{"id": "gpu-01-gpu0", "index": 0, "uuid": "GPU-1"}], "nodes": ["gpu-01"],
        "node_rank": 0, "master_addr": "10.0.0.5", "master_port": 29517,
        "started_at": 1790000000, "deadline": 1790003600, "grace_s": 30,
        "stdout_path": None, "stderr_path": None, "array_id": None, "array_index": None,
        "stop": {"reason": "preempted: booking", "at": 1790000100},
        "launched": {"pid": 120, "at": 1790000000.2},
    }  # fmt: skip
    parsed = parse_spec(raw)
    assert parsed == JobSpec(
        id=17, run=0, user="alice", command=("python", "train.py"), name="train",
        workdir="/home/alice/x", env=(("K", "V"),), gpus=(GpuRef("gpu-01-gpu0", 0, "GPU-1"),),
        nodes=("gpu-01",), node_rank=0, master_addr="10.0.0.5", master_port=29517,
        started_at=1790000000.0, deadline=1790003600.0, grace_s=30.0,
        stop=StopOrder("preempted: booking", 1790000100.0), launched_pid=120, launched=True,
    )  # fmt: skip
    assert parse_spec({"id": "5", "command": ["true"], "user": "bob"}).key == (5, 0)
    with pytest.raises(SpecError, match="unreadable job"):
        parse_spec({"run": 0})
    with pytest.raises(SpecError):
        parse_spec({"id": 1, "gpus": [{"index": 0}]})


def test_event_wire_shapes() -> None:
    assert StartedEvent(17, 0, 120, 1.5).wire() == {
        "type": "started", "job_id": 17, "run": 0, "pid": 120, "at": 1.5,
    }  # fmt: skip
    assert ExitedEvent(17, 0, 0, None, 2.0, "exited").wire() == {
        "type": "exited", "job_id": 17, "run": 0, "exit_code": 0, "signal": None, "at": 2.0,
        "reason": "exited", "message": "",
    }  # fmt: skip
