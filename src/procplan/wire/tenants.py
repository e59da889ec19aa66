"""The Go scheduler's ``Tenant`` (COMPAT.md §3) with our extras: usage we count, members and
managers."""

from __future__ import annotations

from collections.abc import Sequence

from procplan.core.jobs import Tenant
from procplan.wire.base import Json, iso_or_none

__all__ = ["tenant_json", "tenants_json"]


def tenant_json(
    tenant: Tenant,
    gpus: int,
    jobs: int,
    usage_gpu_s: float,
    members: Sequence[str],
    managers: Sequence[str] = (),
) -> Json:
    """The Go scheduler's ``Tenant`` (flat quotas, ``null`` = unlimited) with our extras."""
    return {
        "id": tenant.id,
        "name": tenant.id,
        "email": tenant.email,
        "max_gpus": tenant.max_gpus,
        "max_gpu_memory_mb": tenant.max_gpu_memory_mb,
        "max_cpu_cores": tenant.max_cpu_cores,
        "max_memory_mb": tenant.max_memory_mb,
        "max_concurrent_jobs": tenant.max_jobs,
        "priority_tier": tenant.priority_tier,
        "fair_share_weight": tenant.fair_share_weight,
        "allow_preemption": tenant.allow_preemption,
        "allow_borrow": tenant.allow_borrow,
        "current_gpus": gpus,
        "current_jobs": jobs,
        "usage_gpu_hours": round(usage_gpu_s / 3600, 6),
        "members": list(members),
        "created_at": iso_or_none(tenant.created_at),
        "managers": list(managers),  # members who manage its members and quotas (#12)
    }


def tenants_json(rendered: list[Json]) -> Json:
    """``GET /api/v1/tenants``: every tenant (``tenant_json``) and their number."""
    return {"tenants": rendered, "total": len(rendered)}
