"""Tenant routes (ADR 0005): the Go scheduler's ``POST/GET /api/v1/tenants`` plus PATCH and
membership. A tenant's id is its name; usage fields are ours to count, never the client's
(COMPAT §3 fix), and omitted quotas mean unlimited."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from procplan.api.boundary import body_doc, checked, read_body
from procplan.api.deps import AppContext, ctx
from procplan.api.identity import principal
from procplan.api.models.fields import MAX_NAME, Name
from procplan.api.models.tenants import (
    MAX_TENANT_NAME,
    QUOTA_FIELDS,
    MemberBody,
    TenantCreate,
    TenantPatch,
)
from procplan.api.ownership import audit
from procplan.api.policy import PolicedRoute
from procplan.api.responses import json_response
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import Forbidden
from procplan.core.jobs import Tenant
from procplan.wire.base import Json
from procplan.wire.tenants import tenant_json, tenants_json

router = APIRouter(prefix="/api/v1", tags=["tenants"], route_class=PolicedRoute)


def _render(context: AppContext, tenant: Tenant, usage: Mapping[str, Any]) -> Json:
    """A tenant with its current usage and members (called in a worker thread: it reads)."""
    used = usage.get(tenant.id)
    gpus, jobs, gpu_s = (0, 0, 0.0) if used is None else (used.gpus, used.jobs, used.usage_gpu_s)
    members = context.jobs.members(tenant.id)
    return tenant_json(tenant, gpus, jobs, gpu_s, members, context.accounts.managers(tenant.id))


def _render_one(context: AppContext, tenant: Tenant) -> Json:
    return _render(context, tenant, context.jobs.tenant_usage())


def _render_all(context: AppContext) -> list[Json]:
    usage = context.jobs.tenant_usage()
    return [_render(context, tenant, usage) for tenant in context.jobs.list_tenants()]


def _get(context: AppContext, tenant_id: str) -> Json:
    return _render_one(context, context.jobs.get_tenant(tenant_id))


MANAGER_SETTABLE = frozenset(QUOTA_FIELDS.values())  # what a tenant's manager may change
TenantId = Annotated[str, Path(max_length=MAX_TENANT_NAME)]
UserName = Annotated[str, Path(max_length=MAX_NAME)]


def _member(user: str) -> str:
    return str(checked(Name(MAX_NAME), user, "user"))


@router.post("/tenants", status_code=201, openapi_extra=body_doc(TenantCreate, required=True))
async def create_tenant(request: Request) -> Response:
    """Create a tenant (the Go admin call); 409 ``tenant_exists`` when the name is taken."""
    ask = await read_body(request, TenantCreate)
    context = ctx(request)
    tenant = await run_in_threadpool(
        context.jobs.create_tenant, Tenant(id=ask.name, **ask.changes())
    )
    audit(request, await principal(request), "tenant.create", f"tenant {ask.name}", None)
    return json_response(await run_in_threadpool(_render_one, context, tenant), 201)


@router.get("/tenants")
async def list_tenants(request: Request) -> Response:
    tenants = await run_in_threadpool(_render_all, ctx(request))
    return json_response(tenants_json(tenants))


@router.get("/tenants/{tenant_id}")
async def get_tenant(request: Request, tenant_id: TenantId) -> Response:
    return json_response(await run_in_threadpool(_get, ctx(request), tenant_id))


@router.patch("/tenants/{tenant_id}", openapi_extra=body_doc(TenantPatch, required=True))
async def patch_tenant(request: Request, tenant_id: TenantId) -> Response:
    """Change quotas, weights or flags; only the keys given change, ``null`` lifts a quota."""
    ask = await read_body(request, TenantPatch)
    who = await principal(request)
    changes = ask.changes()
    if not who.is_admin and not set(changes) <= MANAGER_SETTABLE:
        raise Forbidden(
            "tenant managers change quotas only; weights, tiers and flags need an admin",
            code="not_admin",
        )
    context = ctx(request)
    tenant = await run_in_threadpool(context.jobs.update_tenant, tenant_id, changes)
    detail = ",".join(sorted(changes))
    audit(request, who, "tenant.change", f"tenant {tenant_id}", None, detail)
    return json_response(await run_in_threadpool(_render_one, context, tenant))


@router.put("/tenants/{tenant_id}/members/{user}", openapi_extra=body_doc(MemberBody))
async def add_member(request: Request, tenant_id: TenantId, user: UserName) -> Response:
    """Idempotent: adding a member twice is not an error. ``{"manager": true}`` (admins)
    makes them a manager of the tenant."""
    ask = await read_body(request, MemberBody)
    who = await principal(request)
    if ask.manager is not None and not who.is_admin:
        raise Forbidden("only admins choose a tenant's managers", code="not_admin")
    context = ctx(request)
    member = _member(user)
    await run_in_threadpool(context.jobs.add_member, tenant_id, member)
    if ask.manager is not None:
        await run_in_threadpool(context.accounts.set_manager, tenant_id, member, ask.manager)
    detail = "" if ask.manager is None else f"manager={ask.manager}"
    audit(request, who, "tenant.member.add", f"tenant {tenant_id}", member, detail)
    return json_response(await run_in_threadpool(_get, context, tenant_id))


@router.delete("/tenants/{tenant_id}/members/{user}")
async def remove_member(request: Request, tenant_id: TenantId, user: UserName) -> Response:
    context = ctx(request)
    await run_in_threadpool(context.jobs.remove_member, tenant_id, _member(user))
    who = await principal(request)
    audit(request, who, "tenant.member.remove", f"tenant {tenant_id}", user)
    return json_response(await run_in_threadpool(_get, context, tenant_id))
