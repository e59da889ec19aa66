"""Tenants (quota and fair-share groups) and their members.

Tenant writes that the scheduler must see (create, update) bump ``jobs_version`` like job
writes, so every process's ``JobMirror`` reloads the tenants with the next job changes.
Memberships only matter at submission (which tenant a job is charged to) and bump nothing.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from procplan.core.errors import Conflict, InvalidRequest, NotFound
from procplan.core.fairshare import decayed
from procplan.core.jobs import JobState, Tenant
from procplan.core.timeutil import Instant
from procplan.store.engine import Store
from procplan.store.job_writes import next_jobs_version, tenant_pk
from procplan.store.tables import jobs, memberships, tenants, users
from procplan.store.users_repo import find_user_pk, user_pk
from procplan.store.write_batcher import WriteBatcher

# Tenant fields a client may set (usage is the scheduler's, ``id`` and ``created_at`` fixed).
SETTABLE = (
    "email",
    "max_gpus",
    "max_jobs",
    "max_gpu_memory_mb",
    "max_cpu_cores",
    "max_memory_mb",
    "fair_share_weight",
    "allow_borrow",
    "allow_preemption",
    "priority_tier",
)

TENANT_SELECT = select(
    tenants.c.id,
    *(tenants.c[name] for name in SETTABLE),
    tenants.c.created_at,
    tenants.c.usage_gpu_s,
    tenants.c.usage_at,
)
_GET = TENANT_SELECT.where(tenants.c.id == bindparam("tenant_id"))
_MEMBERS = (
    select(users.c.name)
    .join_from(memberships, users)
    .join(tenants)
    .where(tenants.c.id == bindparam("tenant_id"))
    .order_by(memberships.c.created_at, memberships.c.pk)
)
_FIRST_TENANT = (
    select(tenants.c.id)
    .join_from(memberships, tenants)
    .join(users)
    .where(users.c.name == bindparam("user"))
    .order_by(memberships.c.created_at, memberships.c.pk)
    .limit(1)
)
_RUNNING_BY_TENANT = (
    select(tenants.c.id, func.count(), func.coalesce(func.sum(jobs.c.gpu_count), 0))
    .join_from(jobs, tenants)
    .where(jobs.c.state == JobState.RUNNING.value)
    .group_by(tenants.c.id)
)


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """What a tenant holds now (running GPUs and jobs) and its decayed past usage."""

    gpus: int = 0
    jobs: int = 0
    usage_gpu_s: float = 0.0


def row_to_tenant(row: Sequence[Any]) -> tuple[Tenant, float, Instant]:
    """A ``TENANT_SELECT`` row as ``(Tenant, usage_gpu_s, usage_at)``."""
    values: dict[str, Any] = dict(zip(("id", *SETTABLE, "created_at"), row[:-2], strict=True))
    values["allow_borrow"] = bool(values["allow_borrow"])
    values["allow_preemption"] = bool(values["allow_preemption"])
    values["fair_share_weight"] = float(values["fair_share_weight"])
    return Tenant(**values), float(row[-2]), int(row[-1])


class TenantStore:
    """Tenant rows; writes share the job store's group-commit writer."""

    def __init__(self, store: Store, writes: WriteBatcher) -> None:
        self.store = store
        self.writes = writes
        self._user_pks: dict[str, int] = {}

    # ---- reads -------------------------------------------------------------------------

    def get(self, tenant_id: str) -> Tenant | None:
        with self.store.read() as conn:
            row = conn.execute(_GET, {"tenant_id": tenant_id}).first()
        return None if row is None else row_to_tenant(row)[0]

    def list(self) -> list[Tenant]:
        with self.store.read() as conn:
            rows = conn.execute(TENANT_SELECT.order_by(tenants.c.pk)).all()
        return [row_to_tenant(row)[0] for row in rows]

    def members(self, tenant_id: str) -> builtins.list[str]:
        """Member user names, oldest membership first (``NotFound`` for an unknown tenant)."""
        with self.store.read() as conn:
            tenant_pk(conn, tenant_id)
            names = conn.execute(_MEMBERS, {"tenant_id": tenant_id}).scalars()
            return [str(name) for name in names]

    def tenant_of(self, user: str) -> str | None:
        """The user's first tenant (oldest membership), ``None`` when they have none."""
        with self.store.read() as conn:
            found = conn.execute(_FIRST_TENANT, {"user": user}).scalar()
        return None if found is None else str(found)

    def usage(self, now: Instant, half_life_s: int) -> dict[str, TenantUsage]:
        """Every tenant's running GPUs and jobs, and its usage decayed to ``now``."""
        with self.store.read() as conn:
            stored = conn.execute(TENANT_SELECT).all()
            running = {t: (int(n), int(g)) for t, n, g in conn.execute(_RUNNING_BY_TENANT)}
        result: dict[str, TenantUsage] = {}
        for row in stored:
            tenant, used, used_at = row_to_tenant(row)
            jobs_now, gpus_now = running.get(tenant.id, (0, 0))
            result[tenant.id] = TenantUsage(
                gpus_now, jobs_now, decayed(used, used_at, now, half_life_s)
            )
        return result

    # ---- writes ------------------------------------------------------------------------

    def create(self, tenant: Tenant, now: Instant) -> Tenant:
        """Insert a tenant (``Conflict`` ``tenant_exists`` when the id is taken)."""

        def work(conn: Connection) -> Tenant:
            next_jobs_version(conn)
            if conn.execute(_GET, {"tenant_id": tenant.id}).first() is not None:
                raise _exists(tenant.id)
            values = {name: getattr(tenant, name) for name in SETTABLE}
            conn.execute(
                tenants.insert().values(
                    id=tenant.id, usage_gpu_s=0.0, usage_at=now, created_at=now, **values
                )
            )
            return _reload(conn, tenant.id)

        try:
            return self.writes.run(work)
        except IntegrityError as exc:  # created by another process meanwhile
            raise _exists(tenant.id) from exc

    def update(self, tenant_id: str, changes: Mapping[str, object]) -> Tenant:
        """Change settable fields (validated by the caller); unknown names are refused."""
        unknown = sorted(set(changes) - set(SETTABLE))
        if unknown:
            raise InvalidRequest(f"Tenant fields {unknown} cannot be changed", code="invalid_field")

        def work(conn: Connection) -> Tenant:
            pk = tenant_pk(conn, tenant_id)
            if changes:
                next_jobs_version(conn)
                conn.execute(update(tenants).where(tenants.c.pk == pk).values(**changes))
            return _reload(conn, tenant_id)

        return self.writes.run(work)

    def add_member(self, tenant_id: str, user: str, now: Instant) -> None:
        """Make ``user`` a member (creating the user on first use); idempotent."""

        def work(conn: Connection) -> None:
            t_pk = tenant_pk(conn, tenant_id)
            u_pk = user_pk(conn, user, now, self._user_pks)
            exists = conn.execute(
                select(memberships.c.pk)
                .where(memberships.c.tenant_pk == t_pk)
                .where(memberships.c.user_pk == u_pk)
            ).first()
            if exists is None:
                conn.execute(
                    memberships.insert().values(tenant_pk=t_pk, user_pk=u_pk, created_at=now)
                )

        self.writes.run(work)

    def remove_member(self, tenant_id: str, user: str) -> None:
        """End a membership (``NotFound`` ``not_member`` when there is none)."""

        def work(conn: Connection) -> None:
            t_pk = tenant_pk(conn, tenant_id)
            u_pk = find_user_pk(conn, user)
            gone = 0
            if u_pk is not None:
                gone = conn.execute(
                    delete(memberships)
                    .where(memberships.c.tenant_pk == t_pk)
                    .where(memberships.c.user_pk == u_pk)
                ).rowcount
            if not gone:
                raise NotFound(
                    f"User '{user}' is not a member of tenant '{tenant_id}'", code="not_member"
                )

        self.writes.run(work)


def _reload(conn: Connection, tenant_id: str) -> Tenant:
    return row_to_tenant(conn.execute(_GET, {"tenant_id": tenant_id}).one())[0]


def _exists(tenant_id: str) -> Conflict:
    return Conflict(f"Tenant '{tenant_id}' already exists", code="tenant_exists")
