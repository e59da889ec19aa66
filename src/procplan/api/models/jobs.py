"""Requests of the job routes: native ``/api/v1/jobs`` (which also speaks the Go scheduler's
REST dialect, COMPAT §3) and local-gpu-scheduler's ``POST /acquire`` (COMPAT §2).

Requests come from three dialects, hand-written clients and ``curl``. Aliases of one field
(``gpus``/``gpu_count``, ``tenant``/``tenant_id``, ``env``/``environment``...) are separate
fields here, and giving both is a 400. An empty string is "not given" (Go clients send zero
values), and so is ``null``. Bounds keep every stored integer inside its column (PostgreSQL
``INTEGER`` is 32-bit) and every string inside its column and the character rules.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from procplan.api.models.fields import (
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    MAX_LABEL,
    MAX_NAME,
    Flag,
    Integer,
    Name,
    Parsed,
    StringMap,
    Strings,
    Text,
    problem,
)
from procplan.core.errors import InvalidRequest
from procplan.core.jobs import RELEASE_BOOKING, JobKind, JobRequest, JobState, parse_priority

MAX_GPUS = 100_000
MAX_NODES = 10_000
MAX_TIME_LIMIT_S = 10 * 365 * 24 * 3600
MAX_PATH = 4096
MAX_ARRAY_TEXT = 4096
MAX_WAIT_S = 60.0
_ARRAY_ITEM = re.compile(r"^(\d{1,30})(?:-(\d{1,30})(?::(\d{1,30}))?)?$")
_KINDS = {kind.value: kind for kind in JobKind}
_STATES = {state.value: state for state in JobState}
_ACTIVE = frozenset({JobState.PENDING, JobState.RUNNING})

PRIORITY = Parsed(
    parse_priority,
    {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 32}]},
    code="invalid_priority",
)


def parse_kind(value: object) -> JobKind:
    if isinstance(value, str) and value.strip().lower() in _KINDS:
        return _KINDS[value.strip().lower()]
    raise ValueError("kind must be 'batch' or 'interactive'")


KIND = Parsed(parse_kind, {"type": "string", "enum": list(_KINDS)})


def parse_array(text: str, max_size: int) -> tuple[int, ...]:
    """Slurm's ``--array``: ``0-99``, ``0-99:2``, ``1,3,7`` (items may mix), sorted, unique."""
    if not text.strip():
        raise InvalidRequest("array must be a string like '0-99', '0-99:2' or '1,3,7'")
    indices: set[int] = set()
    for item in text.replace(" ", "").split(","):
        match = _ARRAY_ITEM.match(item)
        if match is None:
            raise InvalidRequest(f"array item '{item[:40]}' must look like 7, 0-99 or 0-99:2")
        first, last, step = match.group(1), match.group(2), match.group(3)
        lo, hi, stride = int(first), int(last or first), int(step or 1)
        if hi < lo or stride < 1:
            raise InvalidRequest(f"array item '{item}' is an empty range")
        if (hi - lo) // stride + 1 + len(indices) > max_size:
            raise InvalidRequest(f"array has more than {max_size} tasks")
        if hi > INT32_MAX:
            raise InvalidRequest(f"array indices must be between 0 and {INT32_MAX}")
        indices.update(range(lo, hi + 1, stride))
    return tuple(sorted(indices))


def _one_of(data: dict[str, Any], first: str, second: str) -> None:
    if data.get(first) is not None and data.get(second) is not None:
        raise problem(f"give only one of '{first}' and '{second}'")


_ALIASES = (
    ("tenant", "tenant_id"),
    ("gpu_count", "gpus"),
    ("gpu_type", "gpu_kind"),
    ("time_limit_s", "max_runtime_minutes"),
    ("env", "environment"),
)


class JobSubmit(BaseModel):
    """``POST /api/v1/jobs``: one job, or a job array (``array``: one job per index)."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[JobKind, KIND] = JobKind.BATCH
    name: Annotated[str | None, Name(MAX_LABEL, empty_ok=True)] = None
    user: Annotated[str | None, Name(MAX_NAME, empty_ok=True)] = Field(
        default=None, description="default: the signed-in user (another user: admins only)"
    )
    tenant: Annotated[str | None, Name(MAX_NAME, empty_ok=True)] = None
    tenant_id: Annotated[str | None, Name(MAX_NAME, empty_ok=True)] = None
    priority: Annotated[int | None, PRIORITY] = None
    gpu_count: Annotated[int | None, Integer(0, MAX_GPUS)] = None
    gpus: Annotated[int | None, Integer(0, MAX_GPUS)] = None
    nodes: Annotated[int | None, Integer(1, MAX_NODES)] = None
    gpu_type: Annotated[str | None, Name(MAX_NAME, empty_ok=True)] = None
    gpu_kind: Annotated[str | None, Name(MAX_NAME, empty_ok=True)] = Field(
        default=None,
        description='GPU model (also "gpu_type"); a multi-node job without one runs on a '
        'single model, "any" lets it mix models',
    )
    gpu_memory_mb: Annotated[int | None, Integer(0, INT32_MAX)] = None
    time_limit_s: Annotated[int | None, Integer(1, MAX_TIME_LIMIT_S)] = None
    max_runtime_minutes: Annotated[int | None, Integer(0, MAX_TIME_LIMIT_S // 60)] = None
    node_id: Annotated[str | None, Name(MAX_NAME, empty_ok=True)] = None
    booking_id: Annotated[int | None, Integer(INT32_MIN, INT32_MAX)] = None
    release_booking: Annotated[bool, Flag()] = Field(
        default=False,
        description="with booking_id: when the job ends, the booking ends too (rule 5)",
    )
    command: Annotated[list[str], Strings()] = []
    args: Annotated[list[str], Strings()] = []
    script: Annotated[str | None, Text()] = Field(default=None, description="run by /bin/sh -c")
    workdir: Annotated[str | None, Text(MAX_PATH)] = None
    env: Annotated[tuple[tuple[str, str], ...], StringMap()] = ()
    environment: Annotated[tuple[tuple[str, str], ...], StringMap()] = ()
    stdout: Annotated[str | None, Text(MAX_PATH)] = None
    stderr: Annotated[str | None, Text(MAX_PATH)] = None
    array: Annotated[str | None, Text(MAX_ARRAY_TEXT)] = Field(
        default=None, description="Slurm's --array: '0-99', '0-99:2' or '1,3,7'"
    )
    pid: Annotated[int | None, Integer(1, INT32_MAX)] = None
    host: Annotated[str | None, Name(MAX_LABEL, empty_ok=True)] = None
    cpu_cores: Annotated[int | None, Integer(0, MAX_NODES * 1024)] = None
    memory_mb: Annotated[int | None, Integer(0, INT32_MAX)] = None
    image: Annotated[str | None, Text(MAX_PATH)] = None
    gang_scheduling: Annotated[bool | None, Flag()] = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for first, second in _ALIASES:
                _one_of(data, first, second)
        return data

    def _command(self) -> tuple[str, ...]:
        """``command`` (+ Go's ``args``) or ``script`` (run by ``/bin/sh -c``), not both."""
        command = self.command + self.args
        if self.script and command:
            raise InvalidRequest("give either 'command' (with 'args') or 'script', not both")
        return ("/bin/sh", "-c", self.script) if self.script else tuple(command)

    def _time_limit(self) -> int | None:
        """``time_limit_s``, or Go's ``max_runtime_minutes`` (0 = no limit, Go's zero value)."""
        if self.time_limit_s is not None:
            return self.time_limit_s
        return (self.max_runtime_minutes or 0) * 60 or None

    def _go_extras(self) -> dict[str, object]:
        """The Go scheduler's fields we keep and show but do not schedule on, and whether the
        job's end releases its booking (``release_booking``, rule 5)."""
        extra: dict[str, object] = {
            "cpu_cores": self.cpu_cores,
            "memory_mb": self.memory_mb,
            "image": self.image or None,
            "gang_scheduling": self.gang_scheduling,
            RELEASE_BOOKING: True if self.release_booking else None,
        }
        return {key: value for key, value in extra.items() if value is not None}

    @model_validator(mode="after")
    def _release_needs_a_booking(self) -> JobSubmit:
        if self.release_booking and self.booking_id is None:
            raise problem("release_booking needs booking_id: the booking to end with the job")
        return self

    def to_request(self, user: str, max_array_size: int) -> JobRequest:
        """A typed ``JobRequest``; absent optional fields take its defaults."""
        fields: dict[str, Any] = {
            "user": user,
            "kind": self.kind,
            "name": self.name,
            "tenant": self.tenant or self.tenant_id or None,
            "priority": self.priority,
            "gpu_count": self.gpu_count if self.gpu_count is not None else self.gpus,
            "nodes": self.nodes,
            "gpu_kind": self.gpu_type or self.gpu_kind or None,
            "gpu_memory_mb": self.gpu_memory_mb or None,
            "time_limit_s": self._time_limit(),
            "node_id": self.node_id or None,
            "booking_id": self.booking_id,
            "command": self._command(),
            "workdir": self.workdir or None,
            "env": self.env or self.environment,
            "stdout_path": self.stdout or None,
            "stderr_path": self.stderr or None,
            "array": None if self.array is None else parse_array(self.array, max_array_size),
            "pid": self.pid,
            "host": self.host or None,
            "extra": self._go_extras(),
        }
        defaults = {"name", "priority", "gpu_count", "nodes"}
        return JobRequest(**{k: v for k, v in fields.items() if v is not None or k not in defaults})


def parse_states(raw: object) -> frozenset[JobState] | None:
    """``state=pending,running`` or ``state=active``; ``None`` when not filtered."""
    wanted: set[JobState] = set()
    for part in str(raw).lower().split(","):
        name = part.strip()
        if name == "active":
            wanted |= _ACTIVE
        elif name in _STATES:
            wanted.add(_STATES[name])
        elif name:
            names = ", ".join(_STATES)
            raise ValueError(f"state must be a comma list of {names} or 'active'")
    return frozenset(wanted) or None


class JobListQuery(BaseModel):
    """``GET /api/v1/jobs``: newest first; filters are ANDed."""

    model_config = ConfigDict(extra="ignore")

    user: Annotated[str | None, Name(MAX_NAME)] = None
    tenant_id: Annotated[str | None, Name(MAX_NAME)] = None
    tenant: Annotated[str | None, Name(MAX_NAME)] = None
    state: Annotated[
        frozenset[JobState] | None,
        Parsed(parse_states, {"type": "string", "maxLength": 200}),
    ] = Field(default=None, description="a comma list of states, or 'active'")
    kind: Annotated[JobKind | None, KIND] = None
    node_id: Annotated[str | None, Name(MAX_NAME)] = None
    limit: Annotated[int, Integer(1, 1000)] = 50
    offset: Annotated[int, Integer(0, INT64_MAX)] = 0


class PriorityQuery(BaseModel):
    """``GET /api/v1/queue/priority``: pending jobs in queue order; filters are ANDed and
    keep each job's place in the whole queue."""

    model_config = ConfigDict(extra="ignore")

    user: Annotated[str | None, Name(MAX_NAME)] = None
    tenant_id: Annotated[str | None, Name(MAX_NAME)] = None
    tenant: Annotated[str | None, Name(MAX_NAME)] = None
    limit: Annotated[int, Integer(1, 10_000)] = 1000


def parse_timeout(value: object) -> float:
    """Seconds to wait, clamped to ``[0, 60]``; not a number is a 400."""
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = float("nan")
    if seconds != seconds:
        raise ValueError("timeout must be a number of seconds (0 to 60)")
    return min(max(seconds, 0.0), MAX_WAIT_S)


class WaitQuery(BaseModel):
    """``GET /api/v1/jobs/{id}/wait``: the job once its version passes ``version``."""

    model_config = ConfigDict(extra="ignore")

    timeout: Annotated[
        float, Parsed(parse_timeout, {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S})
    ] = 25.0
    version: Annotated[int | None, Integer(0, INT64_MAX)] = None


class JobRelease(BaseModel):
    """``POST /api/v1/jobs/{id}/release``: the command's exit code (0 or null: completed)."""

    model_config = ConfigDict(extra="forbid")

    exit_code: Annotated[int | None, Integer(INT32_MIN, INT32_MAX)] = None


class AcquireBody(BaseModel):
    """local-gpu-scheduler's ``POST /acquire``: the client's PID and how many GPUs."""

    model_config = ConfigDict(extra="ignore")

    pid: Annotated[int, Integer(1, INT32_MAX)]
    num_gpus: Annotated[
        int, Integer(0, INT64_MAX, message="num_gpus must be a non-negative integer", strings=False)
    ] = 1

    @model_validator(mode="before")
    @classmethod
    def _pid_first(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("pid") is None:
            raise problem("missing pid")
        return data
