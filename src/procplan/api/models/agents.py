"""What agents send (ADR 0006), as typed models that produce the core's values.

Agents are programs, but old, buggy or foreign ones must get a 400 that says which field is
wrong rather than a 500 or a silently half-read report. Unknown keys are ignored (a newer agent
may say more). What an agent saw in the process table (users, command lines, read errors) is
cut to a bounded length rather than refused: a strange command line must not take a node's
monitoring down, and it is only ever shown, escaped, never interpreted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from procplan.api.models.fields import (
    INT32_MAX,
    MAX_LABEL,
    MAX_NAME,
    Checked,
    Flag,
    Integer,
    Name,
    Number,
    Text,
    problem,
)
from procplan.core.model import GpuDevice
from procplan.core.node_reports import (
    MAX_DEVICES,
    MAX_EVENTS,
    MAX_INTERVAL_S,
    MAX_PROCESSES,
    MAX_TEXT_LENGTH,
    MIN_INTERVAL_S,
    AgentEvent,
    Registration,
    Report,
    ReportedProcess,
)
from procplan.core.readings import GpuReading

_IGNORE = ConfigDict(extra="ignore")
_MEASURE = Number(-1e12, 1e12)  # a reading: finite, far beyond any real sensor
_MB = Integer(0, 2**53)


class Seen(Checked):
    """Text the agent read from the host: cut to ``MAX_TEXT_LENGTH``, NUL shown as U+FFFD."""

    def check(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise problem(f"{field} must be a string or null")
        return value[:MAX_TEXT_LENGTH].replace("\x00", "\ufffd")

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


class Pids(Checked):
    """A parent-PID chain: positive integers kept, anything else dropped (at most 64)."""

    def check(self, value: Any, field: str) -> tuple[int, ...]:
        if not isinstance(value, list):
            raise problem(f"{field} must be a list")
        return tuple(
            p for p in value[:64] if isinstance(p, int) and not isinstance(p, bool) and p > 0
        )

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "integer", "minimum": 1}, "maxItems": 64}


class Device(BaseModel):
    """One GPU the agent found; ``mig`` lists its MIG instances' uuids."""

    model_config = _IGNORE

    index: Annotated[int, Integer(0, MAX_DEVICES - 1)]
    uuid: Annotated[str, Name(MAX_NAME)]
    name: Annotated[str, Name(MAX_NAME)]
    memory_mb: Annotated[int | None, Integer(0, INT32_MAX)] = None
    mig: list[Annotated[str, Name(MAX_NAME)]] = Field(default_factory=list, max_length=64)


class RegistrationBody(BaseModel):
    """``POST /api/v1/agents/register``: who the agent is and what GPUs it found."""

    model_config = _IGNORE

    node_id: Annotated[str, Name(MAX_NAME)]
    hostname: Annotated[str, Name(MAX_LABEL)]
    address: Annotated[str, Name(MAX_LABEL)]
    interval_s: Annotated[float, Number(MIN_INTERVAL_S, MAX_INTERVAL_S)]
    devices: list[Device] = Field(default_factory=list, max_length=MAX_DEVICES)
    agent_version: Annotated[str | None, Text(MAX_NAME)] = None
    reader: Annotated[str | None, Text(MAX_NAME)] = None
    os_user: Annotated[str | None, Text(MAX_NAME)] = None
    pid: Annotated[int | None, Integer(0, INT32_MAX)] = None

    @model_validator(mode="after")
    def _distinct_indices(self) -> RegistrationBody:
        indices = [d.index for d in self.devices]
        if len(set(indices)) != len(indices):
            raise problem("two devices have the same index")
        return self

    def registration(self) -> Registration:
        devices = sorted(self.devices, key=lambda d: d.index)
        return Registration(
            node_id=self.node_id,
            hostname=self.hostname,
            address=self.address,
            interval_s=self.interval_s,
            devices=tuple(GpuDevice(d.index, d.uuid, d.name, d.memory_mb) for d in devices),
            mig={d.index: tuple(d.mig) for d in devices if d.mig},
            agent={
                "agent_version": self.agent_version,
                "reader": self.reader,
                "os_user": self.os_user,
                "pid": self.pid,
            },
        )


class Reading(BaseModel):
    """One GPU's (or MIG instance's) readings; ``None`` where the reader had none."""

    model_config = _IGNORE

    index: Annotated[int, Integer(0, INT32_MAX)]
    uuid: Annotated[str, Name(MAX_NAME)]
    utilization_pct: Annotated[float | None, _MEASURE] = None
    memory_used_mb: Annotated[int | None, _MB] = None
    memory_total_mb: Annotated[int | None, _MB] = None
    temperature_c: Annotated[float | None, _MEASURE] = None
    power_w: Annotated[float | None, _MEASURE] = None
    mig: Annotated[bool, Flag()] = False


class Process(BaseModel):
    """A GPU process; ``job_id`` when it belongs to a batch job the agent launched."""

    model_config = _IGNORE

    gpu_uuid: Annotated[str, Name(MAX_NAME)]
    pid: Annotated[int, Integer(0, INT32_MAX)]
    used_memory_mb: Annotated[int | None, _MB] = None
    user: Annotated[str | None, Seen()] = None
    command: Annotated[str | None, Seen()] = None
    job_id: Annotated[int | None, Integer(-INT32_MAX - 1, INT32_MAX)] = None
    ancestors: Annotated[tuple[int, ...], Pids()] = ()
    ending: Annotated[bool, Flag()] = False  # an ended job's process, still tearing down


class RunningRun(BaseModel):
    """A job run the agent is running (and its PID once started)."""

    model_config = _IGNORE

    id: Annotated[int, Integer(-INT32_MAX - 1, INT32_MAX)]
    run: Annotated[int, Integer(0, INT32_MAX)]
    pid: Annotated[int | None, Integer(0, INT32_MAX)] = None


class HeartbeatBody(BaseModel):
    """``POST /api/v1/agents/{node}/heartbeat``: readings, GPU processes, the jobs it runs."""

    model_config = _IGNORE

    session: Annotated[str, Name(MAX_NAME)]
    readings: list[Reading] = Field(default_factory=list, max_length=MAX_DEVICES * 8)
    processes: list[Process] = Field(default_factory=list, max_length=MAX_PROCESSES)
    jobs: list[RunningRun] = Field(default_factory=list, max_length=MAX_PROCESSES)
    read_error: Annotated[str | None, Seen()] = None

    def report(self) -> Report:
        """The core's value (the wire models carry the same field names)."""
        return Report(
            session=self.session,
            readings=tuple(GpuReading(**r.model_dump()) for r in self.readings),
            processes=tuple(ReportedProcess(**p.model_dump()) for p in self.processes),
            jobs=tuple((j.id, j.run, j.pid) for j in self.jobs),
            read_error=self.read_error,
        )


class Event(BaseModel):
    """A job run ``started`` (with its PID) or ``exited`` (with how)."""

    model_config = _IGNORE

    type: Literal["started", "exited"]
    job_id: Annotated[int, Integer(-INT32_MAX - 1, INT32_MAX)]
    run: Annotated[int, Integer(0, INT32_MAX)]
    at: Annotated[float, Number(0.0, 1e11)]
    pid: Annotated[int | None, Integer(0, INT32_MAX)] = None
    exit_code: Annotated[int | None, Integer(-(2**31), INT32_MAX)] = None
    signal: Annotated[int | None, Integer(0, 1024)] = None
    reason: Literal["exited", "time_limit", "stopped", "launch_failed", "lost"] = "exited"
    message: Annotated[str | None, Seen()] = None

    @model_validator(mode="after")
    def _started_has_pid(self) -> Event:
        if self.type == "started" and self.pid is None:
            raise problem("a started event needs its pid")
        return self

    def event(self) -> AgentEvent:
        if self.type == "started":
            return AgentEvent("started", self.job_id, self.run, self.at, pid=self.pid)
        return AgentEvent(
            "exited",
            self.job_id,
            self.run,
            self.at,
            exit_code=self.exit_code,
            signal=self.signal,
            reason=self.reason,
            message=self.message or "",
        )


class EventsBody(BaseModel):
    """``POST /api/v1/agents/{node}/events``."""

    model_config = _IGNORE

    session: Annotated[str, Name(MAX_NAME)]
    events: list[Event] = Field(default_factory=list, max_length=MAX_EVENTS)


class PollQuery(BaseModel):
    """``GET /api/v1/agents/{node}/jobs``: waits up to ``wait`` s while they equal ``version``."""

    model_config = _IGNORE

    session: Annotated[str, Name(MAX_NAME, empty_ok=True)] = ""
    version: Annotated[str | None, Name(MAX_NAME)] = None
    wait: Annotated[float, Number(0, 60, strings=True)] = 25.0


class LogChunkQuery(BaseModel):
    """``POST /api/v1/agents/{node}/jobs/{job}/logs``: where the raw body goes."""

    model_config = _IGNORE

    session: Annotated[str, Name(MAX_NAME, empty_ok=True)] = ""
    stream: Annotated[str, Name(8)] = "stdout"
    run: Annotated[int, Integer(0, 1_000_000)] = 0
    offset: Annotated[int, Integer(0, 2**53)] = 0
    rank: Annotated[int, Integer(0, 9_999)] = 0  # the node's rank (``logs_repo.MAX_RANK``)
