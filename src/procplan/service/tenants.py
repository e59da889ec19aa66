"""Tenant use cases: quota and fair-share groups, their members and what they hold.

``JobService`` exposes these under its own names (``create_tenant``, ...); this class keeps
them apart so that job use cases and tenant use cases each stay small.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Mapping

from procplan.core.errors import NotFound
from procplan.core.job_validation import tenant_changes, validate_tenant
from procplan.core.jobs import DEFAULT_TENANT, Tenant
from procplan.service.clock import Clock
from procplan.service.events import Event, EventBus
from procplan.store.tenants_repo import TenantStore, TenantUsage

__all__ = ["TenantService", "TenantUsage"]

# Submissions look up the job's tenant and its members; tenants change rarely, so those
# answers are kept this long (and dropped at once when this process changes a tenant). A change
# made by another server process is seen within this delay; the planner re-reads tenants for
# every cycle, so quotas themselves are never judged on stale data.
ADMISSION_CACHE_S = 1.0
_MAX_CACHED = 10_000


class TenantService:
    """Validates with the pure core, writes through ``TenantStore``, then publishes
    ``TENANTS_CHANGED``."""

    def __init__(
        self, store: TenantStore, clock: Clock, half_life_s: int, events: EventBus
    ) -> None:
        self.store = store
        self.clock = clock
        self.half_life_s = half_life_s
        self.events = events
        self._admissions: dict[tuple[str | None, str], tuple[float, Tenant, tuple[str, ...]]] = {}
        self._admissions_lock = threading.Lock()

    def _changed(self) -> None:
        with self._admissions_lock:
            self._admissions.clear()
        self.events.publish(Event.TENANTS_CHANGED)

    def create(self, tenant: Tenant) -> Tenant:
        validate_tenant(tenant)
        created = self.store.create(tenant, self.clock.now())
        self._changed()
        return created

    def update(self, tenant_id: str, changes: Mapping[str, object]) -> Tenant:
        updated = self.store.update(tenant_id, tenant_changes(changes))
        self._changed()
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
        self._changed()

    def remove_member(self, tenant_id: str, user: str) -> None:
        self.store.remove_member(tenant_id, user)
        self._changed()

    def resolve(self, explicit: str | None, user: str) -> Tenant:
        """The tenant a job is charged to: the one named, else the user's first membership,
        else ``default``. An unknown name is ``NotFound`` (``unknown_tenant``)."""
        tenant_id = explicit or self.store.tenant_of(user) or DEFAULT_TENANT
        return self.get(tenant_id)

    def admission(self, explicit: str | None, user: str) -> tuple[Tenant, tuple[str, ...]]:
        """``resolve`` plus the tenant's members, for a submission (see ADMISSION_CACHE_S)."""
        key = (explicit, user)
        now = time.monotonic()
        with self._admissions_lock:
            hit = self._admissions.get(key)
        if hit is not None and now - hit[0] < ADMISSION_CACHE_S:
            return hit[1], hit[2]
        tenant = self.resolve(explicit, user)
        members = tuple(self.members(tenant.id))
        with self._admissions_lock:
            if len(self._admissions) >= _MAX_CACHED:
                self._admissions.clear()
            self._admissions[key] = (now, tenant, members)
        return tenant, members
