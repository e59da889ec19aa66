"""The node agent as a pure state machine (ADR 0006 §8): events in, actions out.

``AgentMachine.handle(event)`` returns the actions the shell (``agent/daemon.py``) performs:
HTTP calls, launches, signals. The machine does no I/O, reads no clock (time comes inside
the events as ``now``, epoch seconds), draws no randomness and starts no threads, so tests
drive it with tables of events and expected actions. ``next_wakeup()`` tells the shell when
the next ``Tick`` is due, so an idle agent sleeps instead of polling. The events and actions
are in ``agent/messages.py``, the wire types they carry in ``agent/protocol.py``.

Rules: register at start and whenever the server no longer knows our session; back off
1, 2, 4 … 30 s between failed registrations; a 401 is fatal (the token is wrong). While
registered: a heartbeat every ``interval_s``, one job poll always outstanding, job events
retried until acknowledged. Unreachable servers never stop jobs: the agent keeps running them,
re-registers after a few failed calls, and reports what happened meanwhile. Each heartbeat
comes with the runs that exited within ``ENDING_GRACE_S`` (``ending``), so their processes
still on a GPU while CUDA tears down are reported as the ended job's, never as foreign.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

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
    DEFAULT_GRACE_S,
    ExitedEvent,
    ExitReason,
    JobEvent,
    JobSpec,
    Key,
    RunningJob,
    StartedEvent,
)

SIGTERM = 15
SIGKILL = 9
MAX_BACKOFF_S = 30.0
FAILURES_BEFORE_REREGISTER = 3
FINISHED_MEMORY = 10_000
REPORT_BATCH = 100
ENDING_GRACE_S = 10.0  # an ended run's processes still on a GPU are "ending" this long
LOST_MESSAGE = "the agent restarted and lost track of this job's process"


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures: 1, 2, 4 … capped at 30."""
    return min(MAX_BACKOFF_S, 2.0 ** max(failures - 1, 0))


# -- state ----------------------------------------------------------------------------------

Phase = Literal["new", "registering", "backoff", "registered", "fatal"]


@dataclass
class LocalJob:
    """A job this agent runs (or is launching: ``pid`` is ``None`` until ``Launched``)."""

    spec: JobSpec | None  # None: adopted, not yet seen in a poll answer
    pid: int | None = None
    started_at: float | None = None
    started_reported: bool = False
    stop_reason: Literal["stopped", "time_limit"] | None = None
    stop_message: str = ""
    term_at: float | None = None  # when SIGTERM is due (local clock)
    term_sent: bool = False
    kill_at: float | None = None  # when SIGKILL is due, once SIGTERM went out
    kill_sent: bool = False

    @property
    def grace_s(self) -> float:
        return self.spec.grace_s if self.spec is not None else DEFAULT_GRACE_S


@dataclass
class State:
    phase: Phase = "new"
    session: str | None = None
    interval_s: float = 2.0
    clock_offset: float = 0.0  # server time minus local time, from the register answer
    register_failures: int = 0
    register_at: float | None = None
    heartbeat_at: float | None = None
    heartbeat_busy: bool = False
    net_failures: int = 0
    poll_busy: bool = False
    poll_at: float | None = None
    poll_failures: int = 0
    version: str | None = None
    desired: dict[Key, JobSpec] = field(default_factory=dict)
    jobs: dict[Key, LocalJob] = field(default_factory=dict)
    finished: deque[Key] = field(default_factory=lambda: deque(maxlen=FINISHED_MEMORY))
    finished_set: set[Key] = field(default_factory=set)
    outbox: list[JobEvent] = field(default_factory=list)
    report_busy: bool = False
    report_at: float | None = None
    report_failures: int = 0
    unforgotten: set[Key] = field(default_factory=set)
    ended: dict[Key, float] = field(default_factory=dict)  # run → when its process exited


def _needs_register(status: int | None, code: str | None) -> bool:
    return code in ("unknown_session", "unknown_node") or status in (404, 409)


def _network(status: int | None) -> bool:
    return status is None or status >= 500


class AgentMachine:
    """The agent's decisions; one method per event type."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.state = State(interval_s=interval_s)
        self._handlers: dict[type, Callable[[Any], list[Action]]] = {
            Start: self._start, Tick: self._tick, Adopted: self._adopted,
            Registered: self._registered, RegisterFailed: self._register_failed,
            HeartbeatDone: self._heartbeat_done, HeartbeatFailed: self._heartbeat_failed,
            PollResult: self._poll_result, PollFailed: self._poll_failed,
            Launched: self._launched, LaunchFailed: self._launch_failed, Exited: self._exited,
            EventsAcked: self._events_acked, EventsFailed: self._events_failed,
        }  # fmt: skip

    def handle(self, event: Event) -> list[Action]:
        if self.state.phase == "fatal":
            return []
        return self._handlers[type(event)](event)

    # -- queries for the shell ---------------------------------------------------------------

    @property
    def session(self) -> str | None:
        return self.state.session if self.state.phase == "registered" else None

    @property
    def pending_events(self) -> tuple[JobEvent, ...]:
        return tuple(self.state.outbox)

    @property
    def ending(self) -> tuple[Key, ...]:
        """Runs whose process exited within ``ENDING_GRACE_S`` of the last heartbeat: the
        shell reports their processes still on a GPU as ending, not foreign."""
        return tuple(sorted(self.state.ended))

    def next_wakeup(self) -> float | None:
        """When the next ``Tick`` has something to do (``None``: only events matter)."""
        s = self.state
        times: list[float | None] = []
        if s.phase == "backoff":
            times.append(s.register_at)
        if s.phase == "registered":
            times.append(None if s.heartbeat_busy else s.heartbeat_at)
            times.append(None if s.poll_busy else s.poll_at)
            if s.outbox and not s.report_busy:
                times.append(s.report_at)
        for job in s.jobs.values():
            if job.pid is None:
                continue
            if job.stop_reason is None:
                times.append(self._deadline(job))
            elif not job.term_sent:
                times.append(job.term_at)
            elif not job.kill_sent:
                times.append(job.kill_at)
        return min((t for t in times if t is not None), default=None)

    # -- registration ------------------------------------------------------------------------

    def _start(self, event: Start) -> list[Action]:
        return self._register()

    def _register(self) -> list[Action]:
        s = self.state
        s.phase, s.session = "registering", None
        s.heartbeat_busy = s.poll_busy = s.report_busy = False
        return [Register()]

    def _registered(self, event: Registered) -> list[Action]:
        s = self.state
        if s.phase != "registering":
            return []
        s.phase, s.session = "registered", event.session
        s.interval_s = event.interval_s if event.interval_s > 0 else s.interval_s
        if event.server_time is not None:
            s.clock_offset = event.server_time - event.now
        s.register_failures = s.net_failures = s.poll_failures = s.report_failures = 0
        s.report_at = s.poll_at = None
        s.poll_busy = True
        return [*self._heartbeat(event.now), Poll(event.session, s.version),
                *self._report(event.now)]  # fmt: skip

    def _register_failed(self, event: RegisterFailed) -> list[Action]:
        s = self.state
        if s.phase != "registering":
            return []
        if event.status == 401:
            return self._fatal(event.message)
        s.register_failures += 1
        s.phase, s.register_at = "backoff", event.now + backoff(s.register_failures)
        return []

    def _fatal(self, message: str) -> list[Action]:
        self.state.phase = "fatal"
        return [Fatal(f"the server refused the agent token: {message}")]

    def _failed(self, status: int | None, code: str | None, message: str) -> list[Action] | None:
        """What any failed call of the current session implies beyond its own retry:
        ``None`` when nothing (the caller retries it), else the actions to take instead."""
        if status == 401:
            return self._fatal(message)
        if _needs_register(status, code):
            return self._register()
        if _network(status):
            self.state.net_failures += 1
            if self.state.net_failures >= FAILURES_BEFORE_REREGISTER:
                return self._register()
        return None

    # -- ticks: heartbeats, retries, time limits and kills -------------------------------------

    def _tick(self, event: Tick) -> list[Action]:
        s, now = self.state, event.now
        actions: list[Action] = []
        if s.phase == "backoff" and s.register_at is not None and now >= s.register_at:
            actions += self._register()
        if s.phase == "registered" and s.session is not None:
            if not s.heartbeat_busy and s.heartbeat_at is not None and now >= s.heartbeat_at:
                actions += self._heartbeat(now)
            if not s.poll_busy and s.poll_at is not None and now >= s.poll_at:
                s.poll_busy, s.poll_at = True, None
                actions.append(Poll(s.session, s.version))
            actions += self._report(now)
        return actions + self._signals(now)

    def _heartbeat(self, now: float) -> list[Action]:
        s = self.state
        assert s.session is not None
        s.heartbeat_busy, s.heartbeat_at = True, now + s.interval_s
        running = tuple(
            RunningJob(key[0], key[1], job.pid)
            for key, job in s.jobs.items()
            if job.pid is not None
        )
        for key, at in list(s.ended.items()):
            if now - at > ENDING_GRACE_S:
                del s.ended[key]
        ship: list[Action] = [ShipLogs(s.session)] if s.jobs or s.unforgotten else []
        return [Heartbeat(s.session, running), *ship]

    def _heartbeat_done(self, event: HeartbeatDone) -> list[Action]:
        if event.session != self.state.session:
            return []
        self.state.heartbeat_busy = False
        self.state.net_failures = 0
        return []

    def _heartbeat_failed(self, event: HeartbeatFailed) -> list[Action]:
        if event.session != self.state.session:
            return []
        self.state.heartbeat_busy = False
        return self._failed(event.status, event.code, event.message) or []

    # -- polling and convergence ---------------------------------------------------------------

    def _poll_result(self, event: PollResult) -> list[Action]:
        s = self.state
        if event.session != s.session:
            return []
        s.version, s.poll_failures, s.net_failures = event.version, 0, 0
        s.desired = {spec.key: spec for spec in event.jobs}
        actions: list[Action] = [Poll(event.session, s.version)]
        actions += self._converge(event.now)
        return actions + self._signals(event.now) + self._report(event.now)

    def _poll_failed(self, event: PollFailed) -> list[Action]:
        s = self.state
        if event.session != s.session:
            return []
        s.poll_busy = False
        instead = self._failed(event.status, event.code, event.message)
        if instead is not None:
            return instead
        s.poll_failures += 1
        s.poll_at = event.now + backoff(s.poll_failures)
        return []

    def _converge(self, now: float) -> list[Action]:
        """Start what is desired and unknown, stop what runs and is not desired."""
        s = self.state
        actions: list[Action] = []
        for key, spec in s.desired.items():
            job = s.jobs.get(key)
            if job is None:
                actions += self._new_desired(spec, now)
                continue
            job.spec = spec
            if job.pid is not None and not job.started_reported:
                job.started_reported = True
                if not spec.launched:  # adopted, and the server never heard of the start
                    at = (job.started_at or now) + s.clock_offset
                    s.outbox.append(StartedEvent(key[0], key[1], job.pid, at))
            if spec.stop is not None and job.stop_reason is None:
                term_at = max(now, self._local(spec.stop.at or now))
                self._plan_stop(job, "stopped", spec.stop.reason, term_at)
        for key, job in s.jobs.items():
            if key in s.desired or job.term_sent:
                continue
            if job.stop_reason is None or (job.term_at is not None and job.term_at > now):
                message = "the job no longer runs on this node (cancelled or moved)"
                self._plan_stop(job, "stopped", message, now)
        return actions

    def _new_desired(self, spec: JobSpec, now: float) -> list[Action]:
        s = self.state
        key = spec.key
        if key in s.finished_set:
            return []  # it ran here; its exit is reported (or being reported)
        if spec.launched:
            return self._finish(key, now, "lost", LOST_MESSAGE)
        if spec.stop is not None:
            message = f"stopped before it started: {spec.stop.reason}"
            return self._finish(key, now, "stopped", message)
        deadline = self._deadline(LocalJob(spec))
        if deadline is not None and deadline <= now:
            return self._finish(key, now, "time_limit", "its time limit passed before it started")
        s.jobs[key] = LocalJob(spec)
        return [Launch(spec)]

    def _plan_stop(self, job: LocalJob, reason: Literal["stopped", "time_limit"], message: str,
                   term_at: float) -> None:  # fmt: skip
        job.stop_reason, job.stop_message, job.term_at = reason, message, term_at

    def _local(self, server_time: float) -> float:
        return server_time - self.state.clock_offset

    def _deadline(self, job: LocalJob) -> float | None:
        if job.spec is None or job.spec.deadline is None:
            return None
        return self._local(job.spec.deadline)

    def _signals(self, now: float) -> list[Action]:
        """Time limits reached, SIGTERMs and SIGKILLs that are due."""
        actions: list[Action] = []
        for key, job in self.state.jobs.items():
            if job.pid is None:
                continue
            deadline = self._deadline(job)
            if job.stop_reason is None and deadline is not None and now >= deadline:
                self._plan_stop(job, "time_limit", "the job reached its time limit", deadline)
            if job.stop_reason is None:
                continue
            if not job.term_sent and job.term_at is not None and now >= job.term_at:
                job.term_sent = True
                start = job.term_at if job.stop_reason == "time_limit" else now
                job.kill_at = start + job.grace_s
                actions.append(Signal(key, SIGTERM, job.stop_reason))
            due = job.kill_at is not None and now >= job.kill_at
            if job.term_sent and not job.kill_sent and due:
                job.kill_sent = True
                actions.append(Signal(key, SIGKILL, job.stop_reason))
        return actions

    # -- the job lifecycle -------------------------------------------------------------------

    def _adopted(self, event: Adopted) -> list[Action]:
        self.state.jobs[event.key] = LocalJob(None, pid=event.pid, started_at=event.started_at)
        return []

    def _launched(self, event: Launched) -> list[Action]:
        s = self.state
        job = s.jobs.get(event.key)
        if job is None:
            return []
        job.pid, job.started_at, job.started_reported = event.pid, event.now, True
        at = event.now + s.clock_offset
        s.outbox.append(StartedEvent(event.key[0], event.key[1], event.pid, at))
        return self._signals(event.now) + self._report(event.now)

    def _launch_failed(self, event: LaunchFailed) -> list[Action]:
        self.state.jobs.pop(event.key, None)
        return self._finish(event.key, event.now, "launch_failed", event.message)

    def _exited(self, event: Exited) -> list[Action]:
        job = self.state.jobs.pop(event.key, None)
        if job is None:
            return []
        reason: ExitReason = "exited"
        message = ""
        if job.term_sent and job.stop_reason is not None:
            reason, message = job.stop_reason, job.stop_message
        if event.exit_code is None and event.signal is None:
            message = "exit status unknown: the agent adopted this job after a restart"
        if job.pid is not None:
            self.state.ended[event.key] = event.now
        return self._finish(event.key, event.now, reason, message, event.exit_code, event.signal)

    def _finish(
        self,
        key: Key,
        now: float,
        reason: ExitReason,
        message: str,
        exit_code: int | None = None,
        signal: int | None = None,
    ) -> list[Action]:
        s = self.state
        if key not in s.finished_set:
            if len(s.finished) == s.finished.maxlen:
                s.finished_set.discard(s.finished[0])
            s.finished.append(key)
            s.finished_set.add(key)
        at = now + s.clock_offset
        s.outbox.append(ExitedEvent(key[0], key[1], exit_code, signal, at, reason, message))
        s.unforgotten.add(key)
        return self._report(now)

    # -- reporting job events -------------------------------------------------------------------

    def _report(self, now: float) -> list[Action]:
        s = self.state
        if s.phase != "registered" or s.session is None or not s.outbox or s.report_busy:
            return []
        if s.report_at is not None and now < s.report_at:
            return []
        s.report_busy, s.report_at = True, None
        return [Report(s.session, tuple(s.outbox[:REPORT_BATCH]))]

    def _events_acked(self, event: EventsAcked) -> list[Action]:
        s = self.state
        s.report_busy, s.report_failures = False, 0
        acked = set(event.events)
        s.outbox = [e for e in s.outbox if e not in acked]
        actions: list[Action] = []
        for done in event.events:
            key = (done.job_id, done.run)
            if isinstance(done, ExitedEvent) and key in s.unforgotten:
                s.unforgotten.discard(key)
                actions.append(Forget(key))
        return actions + self._report(event.now)

    def _events_failed(self, event: EventsFailed) -> list[Action]:
        s = self.state
        if event.session != s.session:
            return []
        s.report_busy = False
        instead = self._failed(event.status, event.code, event.message)
        if instead is not None:
            return instead
        s.report_failures += 1
        s.report_at = event.now + backoff(s.report_failures)
        return []
