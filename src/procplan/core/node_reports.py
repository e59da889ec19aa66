"""What agents send (ADR 0006), parsed strictly into plain values.

Agents are programs, but old, buggy or foreign ones must get a 400 that says which field is
wrong rather than a 500 or a silently half-read report. Readings and processes reuse the
reader's own value types (``core.readings``) so the server sees what the reader saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from procplan.core.errors import InvalidRequest
from procplan.core.model import GpuDevice
from procplan.core.readings import GpuReading

MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 4096
MAX_DEVICES = 64
MAX_PROCESSES = 4096
MAX_EVENTS = 1000
MIN_INTERVAL_S = 0.2
MAX_INTERVAL_S = 300.0
EXIT_REASONS = frozenset({"exited", "time_limit", "stopped", "launch_failed", "lost"})


@dataclass(frozen=True, slots=True)
class Registration:
    """``POST /api/v1/agents/register``: who the agent is and what GPUs it found."""

    node_id: str
    hostname: str
    address: str
    interval_s: float
    devices: tuple[GpuDevice, ...]
    mig: Mapping[int, tuple[str, ...]]  # MIG instance uuids by parent GPU index
    agent: Mapping[str, object]  # version, reader, os_user, pid: shown, never interpreted


@dataclass(frozen=True, slots=True)
class ReportedProcess:
    """A GPU process as the agent saw it; ``job_id`` is set for processes of a batch job the
    agent launched, ``ancestors`` (parent PID chain) lets the server find interactive jobs."""

    gpu_uuid: str
    pid: int
    used_memory_mb: int | None
    user: str | None
    command: str | None
    job_id: int | None
    ancestors: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """One heartbeat: the readings, the GPU processes and the jobs the agent runs."""

    session: str
    readings: tuple[GpuReading, ...]
    processes: tuple[ReportedProcess, ...]
    jobs: tuple[tuple[int, int, int | None], ...]  # (job id, run, pid)
    read_error: str | None


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """A job run ``started`` (with its PID) or ``exited`` (with how)."""

    type: str
    job_id: int
    run: int
    at: float
    pid: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str = "exited"
    message: str = ""


# ---- field readers -------------------------------------------------------------------------


def _text(raw: Mapping[str, Any], key: str, where: str, *, limit: int = MAX_ID_LENGTH) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{where}: '{key}' must be a non-empty string")
    value = value.strip()
    if len(value) > limit:
        raise InvalidRequest(f"{where}: '{key}' is longer than {limit} characters")
    if any(ch < " " or ch == "\x7f" for ch in value):
        raise InvalidRequest(f"{where}: '{key}' contains a control character")
    return value


def _optional_text(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{where}: '{key}' must be a string or null")
    return value[:MAX_TEXT_LENGTH]


def _int(raw: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> int | None:
    value = raw.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
        raise InvalidRequest(f"{where}: '{key}' must be an integer")
    return value


def _number(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidRequest(f"{where}: '{key}' must be a number or null")
    return float(value)


def _list(raw: Mapping[str, Any], key: str, where: str, limit: int) -> list[Any]:
    value = raw.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(f"{where}: '{key}' must be a list")
    if len(value) > limit:
        raise InvalidRequest(f"{where}: '{key}' has more than {limit} entries")
    return value


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be an object")
    return value


# ---- documents -----------------------------------------------------------------------------


def parse_registration(raw: Mapping[str, Any]) -> Registration:
    where = "registration"
    node_id = _text(raw, "node_id", where)
    interval = _number(raw, "interval_s", where)
    if interval is None or not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        raise InvalidRequest(
            f"{where}: 'interval_s' must be between {MIN_INTERVAL_S} and {MAX_INTERVAL_S}"
        )
    devices: list[GpuDevice] = []
    mig: dict[int, tuple[str, ...]] = {}
    for n, entry in enumerate(_list(raw, "devices", where, MAX_DEVICES)):
        device, instances = _parse_device(_object(entry, f"device #{n + 1}"), f"device #{n + 1}")
        devices.append(device)
        if instances:
            mig[device.index] = instances
    indices = [d.index for d in devices]
    if len(set(indices)) != len(indices):
        raise InvalidRequest(f"{where}: two devices have the same index")
    agent = {k: raw.get(k) for k in ("agent_version", "reader", "os_user", "pid")}
    return Registration(
        node_id=node_id,
        hostname=_text(raw, "hostname", where, limit=256),
        address=_text(raw, "address", where, limit=256),
        interval_s=interval,
        devices=tuple(sorted(devices, key=lambda d: d.index)),
        mig=mig,
        agent=agent,
    )


def _parse_device(raw: Mapping[str, Any], where: str) -> tuple[GpuDevice, tuple[str, ...]]:
    index = _int(raw, "index", where)
    assert index is not None
    if not 0 <= index < MAX_DEVICES:
        raise InvalidRequest(f"{where}: 'index' must be between 0 and {MAX_DEVICES - 1}")
    memory = _int(raw, "memory_mb", where, optional=True)
    instances = tuple(
        str(u)[:MAX_ID_LENGTH] for u in _list(raw, "mig", where, 64) if isinstance(u, str)
    )
    device = GpuDevice(
        index=index,
        uuid=_text(raw, "uuid", where),
        name=_text(raw, "name", where, limit=MAX_ID_LENGTH),
        memory_mb=memory,
    )
    return device, instances


def parse_report(raw: Mapping[str, Any]) -> Report:
    where = "heartbeat"
    readings = tuple(
        _parse_reading(_object(entry, f"reading #{n + 1}"), f"reading #{n + 1}")
        for n, entry in enumerate(_list(raw, "readings", where, MAX_DEVICES * 8))
    )
    processes = tuple(
        _parse_process(_object(entry, f"process #{n + 1}"), f"process #{n + 1}")
        for n, entry in enumerate(_list(raw, "processes", where, MAX_PROCESSES))
    )
    jobs: list[tuple[int, int, int | None]] = []
    for n, entry in enumerate(_list(raw, "jobs", where, MAX_PROCESSES)):
        job = _object(entry, f"job #{n + 1}")
        job_id, run = _int(job, "id", f"job #{n + 1}"), _int(job, "run", f"job #{n + 1}")
        assert job_id is not None and run is not None
        jobs.append((job_id, run, _int(job, "pid", f"job #{n + 1}", optional=True)))
    return Report(
        session=_text(raw, "session", where),
        readings=readings,
        processes=processes,
        jobs=tuple(jobs),
        read_error=_optional_text(raw, "read_error", where),
    )


def _parse_reading(raw: Mapping[str, Any], where: str) -> GpuReading:
    index = _int(raw, "index", where)
    assert index is not None
    used, total = (
        _int(raw, k, where, optional=True) for k in ("memory_used_mb", "memory_total_mb")
    )
    return GpuReading(
        index=index,
        uuid=_text(raw, "uuid", where),
        utilization_pct=_number(raw, "utilization_pct", where),
        memory_used_mb=used,
        memory_total_mb=total,
        temperature_c=_number(raw, "temperature_c", where),
        power_w=_number(raw, "power_w", where),
        mig=bool(raw.get("mig", False)),
    )


def _parse_process(raw: Mapping[str, Any], where: str) -> ReportedProcess:
    pid = _int(raw, "pid", where)
    assert pid is not None
    ancestors = tuple(a for a in _list(raw, "ancestors", where, 64) if isinstance(a, int) and a > 0)
    return ReportedProcess(
        gpu_uuid=_text(raw, "gpu_uuid", where),
        pid=pid,
        used_memory_mb=_int(raw, "used_memory_mb", where, optional=True),
        user=_optional_text(raw, "user", where),
        command=_optional_text(raw, "command", where),
        job_id=_int(raw, "job_id", where, optional=True),
        ancestors=ancestors,
    )


def parse_events(raw: Mapping[str, Any]) -> tuple[str, tuple[AgentEvent, ...]]:
    """The session and the events of ``POST …/events``."""
    where = "events"
    session = _text(raw, "session", where)
    events: list[AgentEvent] = []
    for n, entry in enumerate(_list(raw, "events", where, MAX_EVENTS)):
        events.append(_parse_event(_object(entry, f"event #{n + 1}"), f"event #{n + 1}"))
    return session, tuple(events)


def _parse_event(raw: Mapping[str, Any], where: str) -> AgentEvent:
    kind = raw.get("type")
    if kind not in ("started", "exited"):
        raise InvalidRequest(f"{where}: 'type' must be 'started' or 'exited'")
    job_id, run = _int(raw, "job_id", where), _int(raw, "run", where)
    at = _number(raw, "at", where)
    assert job_id is not None and run is not None
    if at is None:
        raise InvalidRequest(f"{where}: 'at' must be a number")
    if kind == "started":
        return AgentEvent("started", job_id, run, at, pid=_int(raw, "pid", where))
    reason = raw.get("reason", "exited")
    if reason not in EXIT_REASONS:
        raise InvalidRequest(f"{where}: 'reason' must be one of {', '.join(sorted(EXIT_REASONS))}")
    return AgentEvent(
        "exited",
        job_id,
        run,
        at,
        exit_code=_int(raw, "exit_code", where, optional=True),
        signal=_int(raw, "signal", where, optional=True),
        reason=str(reason),
        message=_optional_text(raw, "message", where) or "",
    )
