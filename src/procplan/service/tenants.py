"""Tenant use cases: quota and fair-share groups, their members and what they hold.

``JobService`` exposes these under its own names (``create_tenant``, ...); this class keeps
them apart so that job use cases and tenant use cases each stay small.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping

from procplan.core.errors import NotFound
from procplan.core.job_validation import tenant_changes, validate_tenant
from procplan.core.jobs import DEFAULT_TENANT, Tenant
from procplan.service.clock import Clock
from procplan.store.tenants_repo import TenantStore, TenantUsage

__all__ = ["TenantService", "TenantUsage"]


class TenantService:
    """Validates with the pure core, writes through ``TenantStore``, then ``on_change()``."""

    def __init__(
        self, store: TenantStore, clock: Clock, half_life_s: int, on_change: Callable[[], None]
    ) -> None:
        self.store = store
        self.clock = clock
        self.half_life_s = half_life_s
        self._on_change = on_change

    def create(self, tenant: Tenant) -> Tenant:
        validate_tenant(tenant)
        created = self.store.create(tenant, self.clock.now())
        self._on_change()
        return created

    def update(self, tenant_id: str, changes: Mapping[str, object]) -> Tenant:
        updated = self.store.update(tenant_id, tenant_changes(changes))
        self._on_change()
        return updated

    def get(self, tenant_id: str) -> Tenant:
        tenant = self.store.get(tenant_id)
        if tenant is None:
            raise NotFound(f"Tenant '{tenant_id}' does not exist", code="unknown_tenant")
        return tenant

    def list(self) -> list[Tenant]:
        return self.store.list()

    def usage(self) -> dict[str, TenantUsage]:
        return self.store.usage(self.clock.now(), self.half_life_s)

    def members(self, tenant_id: str) -> builtins.list[str]:
        return self.store.members(tenant_id)

    def add_member(self, tenant_id: str, user: str) -> None:
        self.store.add_member(tenant_id, user, self.clock.now())
        self._on_change()

    def remove_member(self, tenant_id: str, user: str) -> None:
        self.store.remove_member(tenant_id, user)
        self._on_change()

    def resolve(self, explicit: str | None, user: str) -> Tenant:
        """The tenant a job is charged to: the one named, else the user's first membership,
        else ``default``. An unknown name is ``NotFound`` (``unknown_tenant``)."""
        tenant_id = explicit or self.store.tenant_of(user) or DEFAULT_TENANT
        return self.get(tenant_id)
