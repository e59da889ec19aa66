"""Job, tenant and cluster-status calls of ``ProcPlanClient`` (ADR 0005, ``/api/v1``).

They live in a mixin so that ``client.py`` stays small; ``ProcPlanClient`` inherits them and
supplies the transport (``_object``). Like the rest of the client they return the server's JSON
as plain dicts. Job ids are strings on the wire; callers may pass ints, which are sent as text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

JsonDict = dict[str, Any]
JobId = int | str

WAIT_SLACK_S = 10.0
"""Extra read time for a long poll beyond its own timeout, so that a wait the server answers
at its deadline is not mistaken for a dead server by the client's read timeout."""


def _segment(value: JobId) -> str:
    """One URL path segment: user and tenant names may hold characters that need quoting."""
    return quote(str(value), safe="")


class JobsApi:
    """The job and tenant routes; mixed into ``ProcPlanClient``."""

    # The transport, supplied by ``ProcPlanClient`` (declared for type checkers only).
    _object: Callable[..., JsonDict]

    # -- jobs ------------------------------------------------------------------------------

    def submit_job(self, body: Mapping[str, Any]) -> JsonDict:
        """``POST /api/v1/jobs`` → ``{"job_id", "status", "message", "job"}`` (arrays add
        ``"job_ids"`` and ``"array_id"``). The body is sent as given: the server validates it."""
        return self._object("POST", "/api/v1/jobs", body=dict(body))

    def jobs(self, **filters: str | int | None) -> JsonDict:
        """``GET /api/v1/jobs`` → ``{"jobs", "total"}``; filters (``user``, ``tenant_id``,
        ``state`` — a comma list or ``active`` —, ``kind``, ``limit``, ``offset``) are ANDed."""
        return self._object("GET", "/api/v1/jobs", params=filters)

    def job(self, job_id: JobId) -> JsonDict:
        """``GET /api/v1/jobs/{id}``: the full job object."""
        return self._object("GET", f"/api/v1/jobs/{_segment(job_id)}")

    def wait_job(self, job_id: JobId, version: int | None, timeout: float) -> JsonDict:
        """``GET /api/v1/jobs/{id}/wait``: long-poll until the job differs from ``version``
        (state, reason, position or estimate) or ``timeout`` seconds pass; renews the lease.

        The HTTP read timeout of this one call is ``timeout`` plus a margin, so the server's
        own deadline always comes first.
        """
        params = {"timeout": timeout, "version": version}
        return self._object(
            "GET",
            f"/api/v1/jobs/{_segment(job_id)}/wait",
            params=params,
            timeout=timeout + WAIT_SLACK_S,
        )

    def heartbeat(self, job_id: JobId) -> JsonDict:
        """``POST /api/v1/jobs/{id}/heartbeat`` → ``{"state", "lease_expires_at",
        "preempt_at", "version"}``: renews the lease of a running interactive job."""
        return self._object("POST", f"/api/v1/jobs/{_segment(job_id)}/heartbeat")

    def release_job(self, job_id: JobId, exit_code: int) -> JsonDict:
        """``POST /api/v1/jobs/{id}/release``: the command ended (0 → completed, else failed)."""
        return self._object(
            "POST", f"/api/v1/jobs/{_segment(job_id)}/release", body={"exit_code": exit_code}
        )

    def cancel_job(self, job_id: JobId) -> JsonDict:
        """``DELETE /api/v1/jobs/{id}``: withdraw a pending job or stop a running one."""
        return self._object("DELETE", f"/api/v1/jobs/{_segment(job_id)}")

    # -- tenants and cluster ---------------------------------------------------------------

    def tenants(self) -> JsonDict:
        """``GET /api/v1/tenants`` → ``{"tenants", "total"}``."""
        return self._object("GET", "/api/v1/tenants")

    def tenant(self, tenant_id: str) -> JsonDict:
        """``GET /api/v1/tenants/{id}``: quotas, members and current usage."""
        return self._object("GET", f"/api/v1/tenants/{_segment(tenant_id)}")

    def create_tenant(self, body: Mapping[str, Any]) -> JsonDict:
        """``POST /api/v1/tenants`` (admin); omitted quotas mean unlimited."""
        return self._object("POST", "/api/v1/tenants", body=dict(body))

    def update_tenant(self, tenant_id: str, body: Mapping[str, Any]) -> JsonDict:
        """``PATCH /api/v1/tenants/{id}``: only the keys given change; ``None`` clears a quota."""
        return self._object("PATCH", f"/api/v1/tenants/{_segment(tenant_id)}", body=dict(body))

    def add_member(self, tenant_id: str, user: str, manager: bool | None = None) -> JsonDict:
        """``PUT /api/v1/tenants/{id}/members/{user}`` (idempotent); ``manager`` (admins)
        makes the member one of the tenant's managers, or no longer one."""
        return self._object(
            "PUT",
            f"/api/v1/tenants/{_segment(tenant_id)}/members/{_segment(user)}",
            body=None if manager is None else {"manager": manager},
        )

    def remove_member(self, tenant_id: str, user: str) -> JsonDict:
        """``DELETE /api/v1/tenants/{id}/members/{user}``."""
        return self._object(
            "DELETE", f"/api/v1/tenants/{_segment(tenant_id)}/members/{_segment(user)}"
        )

    def cluster_status(self) -> JsonDict:
        """``GET /api/v1/cluster/status``: GPU, node and job totals (the Go scheduler's shape)."""
        return self._object("GET", "/api/v1/cluster/status")
