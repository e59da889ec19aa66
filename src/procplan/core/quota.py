"""Tenant quotas during one cycle: what is in use (running jobs plus this plan's starts) and
whether one more job fits.

Borrowed jobs count in their tenant's use like any other (so a tenant beyond its quota keeps
borrowing rather than starting "within quota" on top of borrowed GPUs); what makes them
different is that they are the first preemption victims when another tenant needs its quota.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum

from procplan.core.jobs import Job, Tenant
from procplan.core.priority import tenant_of

__all__ = ["QuotaBook", "Verdict"]


class Verdict(Enum):
    OK = "ok"
    BORROW = "borrow"  # beyond max_gpus, but the tenant may borrow idle GPUs
    QUOTA_GPUS = "quota_gpus"
    QUOTA_JOBS = "quota_jobs"


# Enum member lookups cost a metaclass call; this module answers once per pending job.
_OK, _BORROW = Verdict.OK, Verdict.BORROW
_QUOTA_GPUS, _QUOTA_JOBS = Verdict.QUOTA_GPUS, Verdict.QUOTA_JOBS


class QuotaBook:
    """GPUs and jobs in use per tenant, updated as the plan starts jobs."""

    __slots__ = ("_gpus", "_jobs", "_tenants", "limited")

    def __init__(self, tenants: Mapping[str, Tenant], running: Iterable[Job]) -> None:
        self._tenants = tenants
        # Tenants with a limit: for the others ``check`` is always OK (callers skip it).
        self.limited = {
            key for key, t in tenants.items() if t.max_gpus is not None or t.max_jobs is not None
        }
        self._gpus: dict[str, int] = {}
        self._jobs: dict[str, int] = {}
        for job in running:
            self.add(job.tenant, job.gpu_count)

    def tenant(self, tenant_id: str) -> Tenant:
        return tenant_of(self._tenants, tenant_id)

    def add(self, tenant_id: str, gpu_count: int) -> None:
        self._gpus[tenant_id] = self._gpus.get(tenant_id, 0) + gpu_count
        self._jobs[tenant_id] = self._jobs.get(tenant_id, 0) + 1

    def check(self, tenant_id: str, gpu_count: int) -> Verdict:
        """May one more job of ``gpu_count`` GPUs of this tenant start now?"""
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            return _OK
        if tenant.max_jobs is not None and self._jobs.get(tenant_id, 0) + 1 > tenant.max_jobs:
            return _QUOTA_JOBS
        if tenant.max_gpus is not None and (
            self._gpus.get(tenant_id, 0) + gpu_count > tenant.max_gpus
        ):
            return _BORROW if tenant.allow_borrow else _QUOTA_GPUS
        return _OK
