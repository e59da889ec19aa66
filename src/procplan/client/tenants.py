"""The tenant routes (ADR 0005, ``/api/v1/tenants``): ``client.tenants``.

A part composed into ``ProcPlanClient`` over its ``Transport``. Tenant answers stay plain
dicts (the Go scheduler's ``Tenant`` with our extras), shown as sent by ``procplan tenant``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from procplan.client.transport import Transport, segment

JsonDict = dict[str, Any]
TENANTS = "/api/v1/tenants"


class TenantsApi:
    """Tenants (who may use how much), their quotas and members."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(self) -> JsonDict:
        """``GET /api/v1/tenants`` → ``{"tenants", "total"}``."""
        return self._transport.call("GET", TENANTS)

    def get(self, tenant_id: str) -> JsonDict:
        """``GET /api/v1/tenants/{id}``: quotas, members and current usage."""
        return self._transport.call("GET", f"{TENANTS}/{segment(tenant_id)}")

    def create(self, body: Mapping[str, Any]) -> JsonDict:
        """``POST /api/v1/tenants`` (admin); omitted quotas mean unlimited."""
        return self._transport.call("POST", TENANTS, body=dict(body))

    def update(self, tenant_id: str, body: Mapping[str, Any]) -> JsonDict:
        """``PATCH /api/v1/tenants/{id}``: only the keys given change; ``None`` clears a quota."""
        return self._transport.call("PATCH", f"{TENANTS}/{segment(tenant_id)}", body=dict(body))

    def add_member(self, tenant_id: str, user: str, manager: bool | None = None) -> JsonDict:
        """``PUT /api/v1/tenants/{id}/members/{user}`` (idempotent); ``manager`` (admins)
        makes the member one of the tenant's managers, or no longer one."""
        return self._transport.call(
            "PUT",
            f"{TENANTS}/{segment(tenant_id)}/members/{segment(user)}",
            body=None if manager is None else {"manager": manager},
        )

    def set_idle_reclaim(self, tenant_id: str, enabled: bool | None) -> JsonDict:
        """``PUT /api/v1/tenants/{id}/idle-reclaim`` (admins, ADR 0013): reclaim idle
        bookings of the tenant's members, or not; ``None`` follows the cluster setting."""
        return self._transport.call(
            "PUT", f"{TENANTS}/{segment(tenant_id)}/idle-reclaim", body={"enabled": enabled}
        )

    def remove_member(self, tenant_id: str, user: str) -> JsonDict:
        """``DELETE /api/v1/tenants/{id}/members/{user}``."""
        return self._transport.call(
            "DELETE", f"{TENANTS}/{segment(tenant_id)}/members/{segment(user)}"
        )
