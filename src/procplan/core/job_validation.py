"""Validation of job submissions and tenant settings: what can be checked without the ledger.

A job that no node of the cluster could ever run is refused at submission with a message
that says what to change, instead of waiting forever as ``Unsatisfiable``. Sizes of
user-supplied text are bounded so that one request cannot bloat the queue every cycle reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeGuard

from procplan.core.errors import InvalidRequest
from procplan.core.jobs import MAX_PRIORITY, JobRequest, Tenant
from procplan.core.model import Node, Topology
from procplan.core.placement import ANY_GPU_KIND
from procplan.core.timeutil import DAY

__all__ = [
    "JobLimits",
    "matching_gpus",
    "tenant_changes",
    "validate_job_request",
    "validate_tenant",
]


@dataclass(frozen=True, slots=True)
class JobLimits:
    """Bounds on a submission (configurable; generous defaults)."""

    max_time_limit_s: int = 30 * DAY
    max_array_size: int = 10_000
    max_name_len: int = 256
    max_command_chars: int = 64 * 1024
    max_env_vars: int = 1024
    max_env_chars: int = 64 * 1024
    max_path_len: int = 4096


def matching_gpus(node: Node, gpu_kind: str | None, gpu_memory_mb: int | None) -> int:
    """How many GPUs of ``node`` fit the kind (case-insensitive) and memory asked for; a GPU
    whose memory is unknown is assumed to fit."""
    kind = gpu_kind.lower() if gpu_kind else None
    if kind == ANY_GPU_KIND:  # a gang that may mix models: every GPU counts
        kind = None
    return sum(
        1
        for gpu in node.gpus
        if (kind is None or gpu.kind.lower() == kind)
        and (gpu_memory_mb is None or gpu.memory_mb is None or gpu.memory_mb >= gpu_memory_mb)
    )


def validate_job_request(req: JobRequest, topology: Topology, limits: JobLimits) -> None:
    """Raise ``InvalidRequest`` with the first problem of ``req`` (sizes, time, text)."""
    _check_counts(req)
    _check_time(req, limits)
    _check_texts(req, limits)
    _check_array(req, limits)
    _check_fits(req, topology)


def _invalid(message: str, code: str = "invalid_request") -> InvalidRequest:
    return InvalidRequest(message, code=code)


def _check_counts(req: JobRequest) -> None:
    if req.gpu_count < 0:
        raise _invalid(f"gpu_count must be 0 or more (got {req.gpu_count})", "invalid_gpu_count")
    if req.nodes < 1:
        raise _invalid(f"nodes must be at least 1 (got {req.nodes})", "invalid_nodes")
    if req.gpu_count % req.nodes:
        raise _invalid(
            f"gpu_count must be a multiple of nodes (got gpu_count={req.gpu_count}, "
            f"nodes={req.nodes}): each node gets the same number of GPUs",
            "invalid_gpu_count",
        )
    if req.nodes > 1 and req.node_id is not None:
        raise _invalid(
            f"a job pinned to node '{req.node_id}' cannot span {req.nodes} nodes: "
            "drop node_id or ask for nodes=1",
            "invalid_nodes",
        )
    if req.gpu_memory_mb is not None and req.gpu_memory_mb <= 0:
        raise _invalid("gpu_memory_mb must be positive", "invalid_gpu_memory")
    if not -MAX_PRIORITY <= req.priority <= MAX_PRIORITY:
        raise _invalid(f"priority must be between {-MAX_PRIORITY} and {MAX_PRIORITY}")


def _check_time(req: JobRequest, limits: JobLimits) -> None:
    limit = req.time_limit_s
    if limit is None:
        return
    if limit <= 0:
        raise _invalid(
            f"time_limit_s must be positive (got {limit}); omit it for no limit",
            "invalid_time_limit",
        )
    if limit > limits.max_time_limit_s:
        days = limits.max_time_limit_s / DAY
        raise _invalid(
            f"time limit must be at most {limits.max_time_limit_s} s ({days:g} days); "
            "omit it to run until done (open-ended jobs yield to bookings)",
            "invalid_time_limit",
        )


def _check_texts(req: JobRequest, limits: JobLimits) -> None:
    if len(req.name) > limits.max_name_len:
        raise _invalid(f"name must be at most {limits.max_name_len} characters", "too_long")
    if sum(len(arg) for arg in req.command) > limits.max_command_chars:
        raise _invalid(
            f"command must be at most {limits.max_command_chars} characters in all; "
            "put long scripts in a file",
            "too_long",
        )
    if len(req.env) > limits.max_env_vars:
        raise _invalid(f"env must have at most {limits.max_env_vars} variables", "too_long")
    if sum(len(k) + len(v) for k, v in req.env) > limits.max_env_chars:
        raise _invalid(f"env must be at most {limits.max_env_chars} characters in all", "too_long")
    for name, value in (("workdir", req.workdir), ("stdout", req.stdout_path)):
        if value is not None and len(value) > limits.max_path_len:
            raise _invalid(f"{name} must be at most {limits.max_path_len} characters", "too_long")
    if req.stderr_path is not None and len(req.stderr_path) > limits.max_path_len:
        raise _invalid(f"stderr must be at most {limits.max_path_len} characters", "too_long")


def _check_array(req: JobRequest, limits: JobLimits) -> None:
    if req.array is None:
        return
    if not req.array:
        raise _invalid("array must name at least one task index (e.g. 0-9)", "invalid_array")
    if len(req.array) > limits.max_array_size:
        raise _invalid(
            f"array has {len(req.array)} tasks; at most {limits.max_array_size} are allowed",
            "invalid_array",
        )
    if min(req.array) < 0:
        raise _invalid("array task indices must be 0 or more", "invalid_array")
    if len(set(req.array)) != len(req.array):
        raise _invalid("array task indices must be distinct", "invalid_array")


def _check_fits(req: JobRequest, topology: Topology) -> None:
    """Some node (or ``nodes`` nodes) of the cluster can hold the job's GPUs."""
    if req.node_id is not None:
        pinned = topology.node(req.node_id)
        if pinned is None:
            raise _invalid(f"Unknown node id '{req.node_id}'", "unknown_node")
        candidates: tuple[Node, ...] = (pinned,)
    else:
        candidates = topology.nodes
    if req.gpu_count == 0:
        return
    _check_kind(req, candidates)
    per_node = req.gpu_count // req.nodes
    sizes = sorted(
        (matching_gpus(n, req.gpu_kind, req.gpu_memory_mb) for n in candidates), reverse=True
    )
    largest = sizes[0] if sizes else 0
    if per_node > largest:
        where = f"node '{req.node_id}'" if req.node_id is not None else "the largest node"
        raise _invalid(
            f"requested {per_node} GPU(s) but {where} has {largest}{_qualifier(req)}",
            "too_many_gpus",
        )
    able = sum(1 for size in sizes if size >= per_node)
    if able < req.nodes:
        raise _invalid(
            f"requested {req.nodes} nodes with {per_node} GPU(s) each but only {able} "
            f"node(s) have that many{_qualifier(req)}",
            "too_many_nodes",
        )
    if req.nodes > 1 and not req.gpu_kind:
        _check_one_kind(req, candidates, per_node)


def _check_one_kind(req: JobRequest, candidates: tuple[Node, ...], per_node: int) -> None:
    """A multi-node job without a GPU kind runs on one model (``core.placement``): some
    model must have ``nodes`` nodes of ``per_node`` GPUs."""
    kinds = sorted({gpu.kind.lower() for node in candidates for gpu in node.gpus})
    for kind in kinds:
        able = sum(1 for n in candidates if matching_gpus(n, kind, req.gpu_memory_mb) >= per_node)
        if able >= req.nodes:
            return
    raise _invalid(
        f"requested {req.nodes} nodes with {per_node} GPU(s) each of one GPU model, but no "
        f"model has that many such nodes{_qualifier(req)}; name a model with --gpu-type, or "
        "let the job mix models with --gpu-type any",
        "too_many_nodes",
    )


def _check_kind(req: JobRequest, candidates: tuple[Node, ...]) -> None:
    if not req.gpu_kind or req.gpu_kind.lower() == ANY_GPU_KIND:
        return
    kinds = sorted({gpu.kind for node in candidates for gpu in node.gpus})
    if req.gpu_kind.lower() not in {k.lower() for k in kinds}:
        raise _invalid(
            f"no node has GPUs of kind '{req.gpu_kind}' (kinds: {', '.join(kinds) or 'none'})",
            "unknown_gpu_kind",
        )


def _qualifier(req: JobRequest) -> str:
    parts = []
    if req.gpu_kind and req.gpu_kind.lower() != ANY_GPU_KIND:
        parts.append(f"of kind {req.gpu_kind}")
    if req.gpu_memory_mb is not None:
        parts.append(f"with at least {req.gpu_memory_mb} MB")
    return f" ({' '.join(parts)})" if parts else ""


# ---- tenants -----------------------------------------------------------------------------

_QUOTAS = ("max_gpus", "max_jobs", "max_gpu_memory_mb", "max_cpu_cores", "max_memory_mb")
_FLAGS = ("allow_borrow", "allow_preemption")
MAX_TENANT_ID_LEN = 128


def validate_tenant(tenant: Tenant) -> None:
    """A new tenant: a printable id, quotas that are ``None`` or >= 0, a sane weight."""
    tid = tenant.id
    if not tid.strip() or len(tid) > MAX_TENANT_ID_LEN:
        raise _invalid(f"tenant id must be 1 to {MAX_TENANT_ID_LEN} characters", "invalid_tenant")
    if any(ord(ch) < 32 or ch in "/\x7f" for ch in tid):
        raise _invalid("tenant id must not contain '/' or control characters", "invalid_tenant")
    tenant_changes({name: getattr(tenant, name) for name in (*_QUOTAS, *_FLAGS)})
    tenant_changes({"fair_share_weight": tenant.fair_share_weight})
    tenant_changes({"priority_tier": tenant.priority_tier, "email": tenant.email})


def tenant_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """Check field types and ranges of tenant settings; returns them normalised."""
    checked: dict[str, object] = {}
    for name, value in changes.items():
        checked[name] = _tenant_value(name, value)
    return checked


def _tenant_value(name: str, value: object) -> object:
    if name in _QUOTAS:
        return _quota(name, value)
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise _invalid(f"{name} must be true or false")
        return value
    if name == "fair_share_weight":
        return _weight(value)
    if name == "priority_tier":
        if not _is_int(value) or abs(value) > MAX_PRIORITY:
            raise _invalid(f"priority_tier must be a whole number within ±{MAX_PRIORITY}")
        return value
    if name == "email":
        if not isinstance(value, str) or len(value) > 256:
            raise _invalid("email must be text of at most 256 characters")
        return value
    raise _invalid(f"unknown tenant field '{name}'", "invalid_field")


def _quota(name: str, value: object) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value < 0:
        raise _invalid(f"{name} must be a whole number >= 0, or null for unlimited")
    return value


def _weight(value: object) -> float:
    weight = float(value) if _is_int(value) or isinstance(value, float) else math.nan
    if math.isfinite(weight) and 0 < weight <= 1e6:
        return weight
    raise _invalid("fair_share_weight must be a number > 0 (and at most 1000000)")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
