"""Wire bodies → ``core.jobs.JobRequest`` / ``Tenant`` fields, with strict types.

Requests come from three dialects (native, the Go scheduler's REST, ``srun``), hand-written
clients and ``curl``: every field is type-checked here so that bad input is a 400 naming the
field, never a 422 (pydantic) or a 500 (an overflow in the database). Bools are not integers,
and JSON ``null`` means "not given" (Go clients send zero values and nulls for unset fields).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from procplan.api.deps import strict_int
from procplan.core.errors import InvalidRequest
from procplan.core.jobs import JobKind, JobRequest, parse_priority

# Bounds keep every stored integer far inside the databases' 64-bit range.
MAX_GPUS = 100_000
MAX_NODES = 10_000
MAX_MB = 1 << 40
MAX_TIME_LIMIT_S = 10 * 365 * 24 * 3600
MAX_PID = 1 << 31
MAX_ID = 2**63 - 1
MAX_TEXT = 4096
MAX_NAME = 128  # user, tenant, node and GPU-kind columns
MAX_LABEL = 256  # job name, host and e-mail columns

JOB_FIELDS = frozenset(
    {
        "kind", "name", "user", "tenant", "tenant_id", "priority", "gpu_count", "gpus",
        "nodes", "gpu_type", "gpu_kind", "gpu_memory_mb", "time_limit_s",
        "max_runtime_minutes", "node_id", "booking_id", "command", "args", "script",
        "workdir", "env", "environment", "stdout", "stderr", "array", "pid", "host",
        "cpu_cores", "memory_mb", "image", "gang_scheduling",
    }
)  # fmt: skip
_ARRAY_ITEM = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")


def given(body: Mapping[str, Any], key: str) -> bool:
    """Present and not ``null``."""
    return body.get(key) is not None


def one_of(body: Mapping[str, Any], first: str, second: str) -> str | None:
    """The key used among two aliases (``gpus``/``gpu_count``); both at once is a 400."""
    if given(body, first) and given(body, second):
        raise InvalidRequest(f"give only one of '{first}' and '{second}'")
    if given(body, first):
        return first
    return second if given(body, second) else None


def int_field(body: Mapping[str, Any], key: str, lo: int, hi: int) -> int | None:
    """An integer in ``[lo, hi]`` (JSON integer or integer string; not a float, not a bool),
    or ``None`` when absent."""
    value = body.get(key)
    if value is None:
        return None
    message = f"{key} must be an integer between {lo} and {hi}"
    number = strict_int(value, message)
    if not lo <= number <= hi:
        raise InvalidRequest(message)
    return number


def text_field(
    body: Mapping[str, Any], key: str, *, empty_ok: bool = False, max_len: int = MAX_TEXT
) -> str | None:
    """A string (surrounding blanks stripped), or ``None`` when absent (or empty: Go's "").

    ``max_len`` matches the column it is stored in (PostgreSQL refuses longer values)."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{key} must be a string")
    value = value.strip()
    if len(value) > max_len:
        raise InvalidRequest(f"{key} must be at most {max_len} characters")
    if not value and not empty_ok:
        return None
    return value


def bool_field(body: Mapping[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidRequest(f"{key} must be true or false")
    return value


def str_list(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidRequest(f"{key} must be an array of strings")
    return value


def str_map(body: Mapping[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRequest(f"{key} must be an object of string values")
    return tuple((str(k), v) for k, v in value.items())


def parse_array(text: object, max_size: int) -> tuple[int, ...]:
    """Slurm's ``--array``: ``0-99``, ``0-99:2``, ``1,3,7`` (items may mix), sorted, unique."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("array must be a string like '0-99', '0-99:2' or '1,3,7'")
    indices: set[int] = set()
    for item in text.replace(" ", "").split(","):
        match = _ARRAY_ITEM.match(item)
        if match is None:
            raise InvalidRequest(f"array item '{item}' must look like 7, 0-99 or 0-99:2")
        first, last, step = match.group(1), match.group(2), match.group(3)
        lo, hi, stride = int(first), int(last or first), int(step or 1)
        if hi < lo or stride < 1:
            raise InvalidRequest(f"array item '{item}' is an empty range")
        if (hi - lo) // stride + 1 + len(indices) > max_size:
            raise InvalidRequest(f"array has more than {max_size} tasks")
        indices.update(range(lo, hi + 1, stride))
    return tuple(sorted(indices))


def _command(body: Mapping[str, Any]) -> tuple[str, ...]:
    """``command`` (+ Go's ``args``) or ``script`` (run by ``/bin/sh -c``), not both."""
    command = str_list(body, "command") + str_list(body, "args")
    script = text_field(body, "script")
    if script is not None and command:
        raise InvalidRequest("give either 'command' (with 'args') or 'script', not both")
    return ("/bin/sh", "-c", script) if script is not None else tuple(command)


def _time_limit(body: Mapping[str, Any]) -> int | None:
    """``time_limit_s``, or Go's ``max_runtime_minutes`` (0 = no limit, Go's zero value)."""
    key = one_of(body, "time_limit_s", "max_runtime_minutes")
    if key == "time_limit_s":
        return int_field(body, key, 1, MAX_TIME_LIMIT_S)
    if key == "max_runtime_minutes":
        minutes = int_field(body, key, 0, MAX_TIME_LIMIT_S // 60) or 0
        return minutes * 60 or None
    return None


def _kind(body: Mapping[str, Any]) -> JobKind:
    raw = body.get("kind")
    if raw is None:
        return JobKind.BATCH
    kinds = {kind.value: kind for kind in JobKind}
    if not isinstance(raw, str) or raw.strip().lower() not in kinds:
        raise InvalidRequest("kind must be 'batch' or 'interactive'")
    return kinds[raw.strip().lower()]


def _priority(body: Mapping[str, Any]) -> int | None:
    raw = body.get("priority")
    if raw is None:
        return None
    try:
        return parse_priority(raw)
    except ValueError as exc:
        raise InvalidRequest(str(exc), code="invalid_priority") from exc


def _go_extras(body: Mapping[str, Any]) -> dict[str, object]:
    """The Go scheduler's fields we keep and show but do not schedule on."""
    extra: dict[str, object] = {
        "cpu_cores": int_field(body, "cpu_cores", 0, MAX_NODES * 1024),
        "memory_mb": int_field(body, "memory_mb", 0, MAX_MB),
        "image": text_field(body, "image"),
        "gang_scheduling": bool_field(body, "gang_scheduling"),
    }
    return {key: value for key, value in extra.items() if value is not None}


def _count(body: Mapping[str, Any], first: str, second: str, lo: int, hi: int) -> int | None:
    key = one_of(body, first, second)
    return None if key is None else int_field(body, key, lo, hi)


def job_request(body: Mapping[str, Any], user: str, max_array_size: int) -> JobRequest:
    """``POST /api/v1/jobs`` body (native and Go names) → a typed ``JobRequest``."""
    unknown = sorted(set(body) - JOB_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field '{unknown[0]}'")
    fields: dict[str, Any] = {
        "user": user,
        "kind": _kind(body),
        "name": text_field(body, "name", empty_ok=True, max_len=MAX_LABEL),
        "tenant": text_field(
            body, one_of(body, "tenant", "tenant_id") or "tenant", max_len=MAX_NAME
        ),
        "priority": _priority(body),
        "gpu_count": _count(body, "gpu_count", "gpus", 0, MAX_GPUS),
        "nodes": int_field(body, "nodes", 1, MAX_NODES),
        "gpu_kind": text_field(
            body, one_of(body, "gpu_type", "gpu_kind") or "gpu_type", max_len=MAX_NAME
        ),
        "gpu_memory_mb": int_field(body, "gpu_memory_mb", 0, MAX_MB) or None,
        "time_limit_s": _time_limit(body),
        "node_id": text_field(body, "node_id", max_len=MAX_NAME),
        "booking_id": int_field(body, "booking_id", -MAX_ID - 1, MAX_ID),
        "command": _command(body),
        "workdir": text_field(body, "workdir"),
        "env": str_map(body, one_of(body, "env", "environment") or "env"),
        "stdout_path": text_field(body, "stdout"),
        "stderr_path": text_field(body, "stderr"),
        "array": None if body.get("array") is None else parse_array(body["array"], max_array_size),
        "pid": int_field(body, "pid", 1, MAX_PID),
        "host": text_field(body, "host", max_len=MAX_LABEL),
        "extra": _go_extras(body),
    }
    # Absent optional fields take JobRequest's defaults (None is a real value for some).
    defaults = {"name", "priority", "gpu_count", "nodes"}
    return JobRequest(**{k: v for k, v in fields.items() if v is not None or k not in defaults})


def number_field(body: Mapping[str, Any], key: str, lo: float, hi: float) -> float | None:
    """A finite JSON number in ``[lo, hi]`` (ints and floats; not bools, not strings)."""
    value = body.get(key)
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not lo <= value <= hi:
        raise InvalidRequest(f"{key} must be a number between {lo:g} and {hi:g}")
    return float(value)


# ---- tenants ---------------------------------------------------------------------------

# Wire name → ``Tenant`` field for the settable quotas (``None`` = unlimited).
TENANT_QUOTAS: Mapping[str, tuple[str, int]] = {
    "max_gpus": ("max_gpus", MAX_GPUS),
    "max_concurrent_jobs": ("max_jobs", MAX_ID),
    "max_gpu_memory_mb": ("max_gpu_memory_mb", MAX_MB),
    "max_cpu_cores": ("max_cpu_cores", MAX_MB),
    "max_memory_mb": ("max_memory_mb", MAX_MB),
}
TENANT_SETTABLE = frozenset(
    {*TENANT_QUOTAS, "email", "priority_tier", "fair_share_weight", "allow_preemption"}
    | {"allow_borrow"}
)
# The Go scheduler let clients write its usage counters; they are ours to keep (COMPAT §3 fix).
_NOT_SETTABLE = frozenset({"id", "created_at", "updated_at", "usage_gpu_hours", "members"})
MAX_WEIGHT = 1_000_000.0
MAX_TENANT_NAME = 64


def _refuse_unsettable(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key in body:
        if key in allowed:
            continue
        if key == "members":
            raise InvalidRequest(
                "members is not client-settable here: use PUT /api/v1/tenants/{id}/members/{user}"
            )
        if key in _NOT_SETTABLE or key.startswith(("current_", "usage_")):
            raise InvalidRequest(f"{key} is not client-settable")
        raise InvalidRequest(f"unknown field '{key}'")


def tenant_name(value: object) -> str:
    """A tenant's id is its name: a path segment, so no ``/`` and no control characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("name is required: a non-empty string (the tenant's id)")
    name = value.strip()
    if len(name) > MAX_TENANT_NAME or "/" in name or any(ord(ch) < 32 for ch in name):
        raise InvalidRequest(
            f"name must be at most {MAX_TENANT_NAME} characters, without '/' or control characters"
        )
    return name


def _tier(body: Mapping[str, Any]) -> int | None:
    """An integer, or a priority class name (the Go CLI's ``--priority high``)."""
    raw = body.get("priority_tier")
    if raw is None:
        return None
    try:
        return parse_priority(raw)
    except ValueError as exc:
        raise InvalidRequest(str(exc).replace("priority", "priority_tier", 1)) from exc


def _tenant_settings(body: Mapping[str, Any]) -> dict[str, Any]:
    """Settable fields present in ``body`` → ``Tenant`` field names (quota ``null`` kept)."""
    changes: dict[str, Any] = {}
    for wire, (field_name, hi) in TENANT_QUOTAS.items():
        if wire in body:
            changes[field_name] = int_field(body, wire, 0, hi)
    scalars: dict[str, Any] = {
        "email": text_field(body, "email", empty_ok=True, max_len=MAX_LABEL),
        "priority_tier": _tier(body),
        "fair_share_weight": number_field(body, "fair_share_weight", 0.0, MAX_WEIGHT),
        "allow_preemption": bool_field(body, "allow_preemption"),
        "allow_borrow": bool_field(body, "allow_borrow"),
    }
    for key, value in scalars.items():
        if key in body and value is None:
            raise InvalidRequest(f"{key} must not be null")
        if value is not None:
            changes[key] = value
    if changes.get("fair_share_weight") == 0.0:
        raise InvalidRequest("fair_share_weight must be greater than 0")
    return changes


def tenant_create(body: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /api/v1/tenants`` body → ``Tenant(**fields)`` keyword arguments."""
    _refuse_unsettable(body, TENANT_SETTABLE | {"name"})
    return {"id": tenant_name(body.get("name")), **_tenant_settings(body)}


def tenant_patch(body: Mapping[str, Any]) -> dict[str, Any]:
    """``PATCH /api/v1/tenants/{id}`` body → the changed ``Tenant`` fields."""
    if "name" in body:
        raise InvalidRequest("name cannot be changed: it is the tenant's id")
    _refuse_unsettable(body, TENANT_SETTABLE)
    changes = _tenant_settings(body)
    if not changes:
        raise InvalidRequest("nothing to change: give at least one tenant field")
    return changes
