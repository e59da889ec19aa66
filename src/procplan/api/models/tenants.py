"""Requests of the tenant routes: the Go scheduler's ``POST /api/v1/tenants`` plus PATCH.

A tenant's id is its name. Usage fields are ours to count, never the client's (COMPAT §3 fix),
and omitted quotas mean unlimited; in a PATCH only the keys given change and ``null`` lifts a
quota. Quotas are stored in 32-bit columns, which bounds them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, model_validator

from procplan.api.models.fields import (
    INT32_MAX,
    MAX_LABEL,
    Checked,
    Flag,
    Integer,
    Name,
    Number,
    Parsed,
    problem,
)
from procplan.api.models.jobs import MAX_GPUS
from procplan.core.jobs import parse_priority
from procplan.core.text import name_problem

MAX_WEIGHT = 1_000_000.0
MAX_TENANT_NAME = 64
# Wire name → ``Tenant`` field for the settable quotas (``None`` = unlimited).
QUOTA_FIELDS = {
    "max_gpus": "max_gpus",
    "max_concurrent_jobs": "max_jobs",
    "max_gpu_memory_mb": "max_gpu_memory_mb",
    "max_cpu_cores": "max_cpu_cores",
    "max_memory_mb": "max_memory_mb",
}
_SCALARS = ("email", "priority_tier", "fair_share_weight", "allow_preemption", "allow_borrow")
# The Go scheduler let clients write its usage counters; they are ours to keep.
_NOT_SETTABLE = frozenset({"id", "created_at", "updated_at", "usage_gpu_hours"})


def _tier(value: object) -> int:
    """An integer, or a priority class name (the Go CLI's ``--priority high``)."""
    try:
        return parse_priority(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace("priority", "priority_tier", 1)) from None


class TenantName(Checked):
    """A tenant's id is its name: a path segment, so no ``/`` and no control characters."""

    def check(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise problem("name is required: a non-empty string (the tenant's id)")
        name = value.strip()
        if len(name) > MAX_TENANT_NAME or "/" in name or name_problem(name) is not None:
            raise problem(
                f"name must be at most {MAX_TENANT_NAME} characters, "
                "without '/' or control characters"
            )
        return name

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_TENANT_NAME,
            "pattern": "^[^/]+$",
        }


def _refuse_unsettable(data: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in data:
        if key in allowed:
            continue
        if key == "members":
            raise problem(
                "members is not client-settable here: use PUT /api/v1/tenants/{id}/members/{user}"
            )
        if key in _NOT_SETTABLE or key.startswith(("current_", "usage_")):
            raise problem(f"{key} is not client-settable")
        raise problem(f"unknown field '{key}'")


class TenantSettings(BaseModel):
    """The settable fields; ``changes`` gives those present as ``Tenant`` field names."""

    model_config = ConfigDict(extra="forbid")

    max_gpus: Annotated[int | None, Integer(0, MAX_GPUS)] = None
    max_concurrent_jobs: Annotated[int | None, Integer(0, INT32_MAX)] = None
    max_gpu_memory_mb: Annotated[int | None, Integer(0, INT32_MAX)] = None
    max_cpu_cores: Annotated[int | None, Integer(0, INT32_MAX)] = None
    max_memory_mb: Annotated[int | None, Integer(0, INT32_MAX)] = None
    email: Annotated[str | None, Name(MAX_LABEL, empty_ok=True)] = None
    priority_tier: Annotated[
        int | None, Parsed(_tier, {"anyOf": [{"type": "integer"}, {"type": "string"}]})
    ] = None
    fair_share_weight: Annotated[float | None, Number(0.0, MAX_WEIGHT)] = None
    allow_preemption: Annotated[bool | None, Flag()] = None
    allow_borrow: Annotated[bool | None, Flag()] = None

    @model_validator(mode="before")
    @classmethod
    def _settable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _refuse_unsettable(data, frozenset(cls.model_fields) | {"name"})
            for key in _SCALARS:
                if key in data and data[key] is None:
                    raise problem(f"{key} must not be null")
        return data

    @model_validator(mode="after")
    def _positive_weight(self) -> TenantSettings:
        if self.fair_share_weight == 0.0:
            raise problem("fair_share_weight must be greater than 0")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields given, as ``Tenant`` field names (a quota given as ``null`` is kept:
        it lifts the quota)."""
        given = self.model_fields_set
        out: dict[str, Any] = {
            tenant_field: getattr(self, wire)
            for wire, tenant_field in QUOTA_FIELDS.items()
            if wire in given
        }
        out.update({key: getattr(self, key) for key in _SCALARS if key in given})
        return out


class TenantCreate(TenantSettings):
    """``POST /api/v1/tenants``."""

    name: Annotated[str, TenantName()]

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("name") is None:
            raise problem("name is required: a non-empty string (the tenant's id)")
        return data


class TenantPatch(TenantSettings):
    """``PATCH /api/v1/tenants/{id}``: at least one field; the name cannot change."""

    @model_validator(mode="before")
    @classmethod
    def _not_renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" in data:
            raise problem("name cannot be changed: it is the tenant's id")
        return data

    @model_validator(mode="after")
    def _something(self) -> TenantPatch:
        if not self.changes():
            raise problem("nothing to change: give at least one tenant field")
        return self


class MemberBody(BaseModel):
    """``PUT /api/v1/tenants/{id}/members/{user}`` (body optional): ``manager`` makes the member
    one of the tenant's managers (admins only), who then manage its members and quotas."""

    model_config = ConfigDict(extra="forbid")

    manager: Annotated[bool | None, Flag()] = None
