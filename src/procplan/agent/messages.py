"""What the agent's state machine and its shell say to each other (ADR 0006 §8).

Events are the machine's inputs: what happened, with the local time as ``now`` (epoch
seconds). Actions are its outputs: what the shell (``agent/daemon.py``) is to do. Both are
plain frozen values, so tests compare them exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from procplan.agent.protocol import JobEvent, JobSpec, Key, RunningJob

# -- events (inputs) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    now: float


@dataclass(frozen=True, slots=True)
class Tick:
    now: float


@dataclass(frozen=True, slots=True)
class Adopted:
    """A job of a previous agent run, found alive in the state directory (before ``Start``)."""

    now: float
    key: Key
    pid: int
    started_at: float


@dataclass(frozen=True, slots=True)
class Registered:
    now: float
    session: str
    interval_s: float
    server_time: float | None = None


@dataclass(frozen=True, slots=True)
class RegisterFailed:
    """``status`` is ``None`` when no answer came (network, timeout, GPU discovery)."""

    now: float
    status: int | None
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class HeartbeatDone:
    now: float
    session: str


@dataclass(frozen=True, slots=True)
class HeartbeatFailed:
    now: float
    session: str
    status: int | None
    code: str | None
    message: str = ""


@dataclass(frozen=True, slots=True)
class PollResult:
    now: float
    session: str
    version: str | None
    jobs: tuple[JobSpec, ...]


@dataclass(frozen=True, slots=True)
class PollFailed:
    now: float
    session: str
    status: int | None
    code: str | None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Launched:
    now: float
    key: Key
    pid: int


@dataclass(frozen=True, slots=True)
class LaunchFailed:
    now: float
    key: Key
    message: str


@dataclass(frozen=True, slots=True)
class Exited:
    """The job's process ended; both ``None``: the status is unknown (an adopted job)."""

    now: float
    key: Key
    exit_code: int | None
    signal: int | None


@dataclass(frozen=True, slots=True)
class EventsAcked:
    now: float
    events: tuple[JobEvent, ...]


@dataclass(frozen=True, slots=True)
class EventsFailed:
    now: float
    session: str
    status: int | None
    code: str | None
    message: str = ""


Event = (
    Start | Tick | Adopted | Registered | RegisterFailed | HeartbeatDone | HeartbeatFailed
    | PollResult | PollFailed | Launched | LaunchFailed | Exited | EventsAcked | EventsFailed
)  # fmt: skip


# -- actions (outputs) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Register:
    pass


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Report readings and processes (the runs that just ended: ``AgentMachine.ending``)."""

    session: str
    jobs: tuple[RunningJob, ...]


@dataclass(frozen=True, slots=True)
class Poll:
    session: str
    version: str | None


@dataclass(frozen=True, slots=True)
class Launch:
    spec: JobSpec


@dataclass(frozen=True, slots=True)
class Signal:
    key: Key
    signum: int
    reason: str


@dataclass(frozen=True, slots=True)
class Report:
    session: str
    events: tuple[JobEvent, ...]


@dataclass(frozen=True, slots=True)
class ShipLogs:
    """Ship new log bytes of every tracked job (the shell flushes an exited job's logs
    before reporting its exit)."""

    session: str


@dataclass(frozen=True, slots=True)
class Forget:
    """The job's exit is acknowledged: drop its state file and log tracking."""

    key: Key


@dataclass(frozen=True, slots=True)
class Fatal:
    message: str


Action = Register | Heartbeat | Poll | Launch | Signal | Report | ShipLogs | Forget | Fatal
