"""Users' roles and Unix accounts, their credentials (hashed), tenant managers, the audit log.

These writes are rare (an admin's command, a sign-in), so they take the store's write
transaction directly instead of the group-commit batcher the ledger's hot paths use.
Users are never deleted: bookings and jobs keep naming them; ``remove`` disables the user
and revokes every credential.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from procplan.core.errors import NotFound
from procplan.core.identity import Account, AuditEntry, Credential, Role
from procplan.core.timeutil import Instant
from procplan.store.engine import Store
from procplan.store.tables import audit, credentials, memberships, tenants, users
from procplan.store.users_repo import find_user_pk, user_pk
from procplan.store.write_batcher import WriteBatcher

_USER_SELECT = select(
    users.c.name,
    users.c.role,
    users.c.unix_user,
    users.c.password_hash.is_not(None),
    users.c.disabled,
    users.c.created_at,
)
_MANAGES = (
    select(tenants.c.id)
    .join_from(memberships, tenants)
    .join(users)
    .where(users.c.name == bindparam("name"))
    .where(memberships.c.manager.is_(True))
    .order_by(tenants.c.id)
)
# One credential by the digest of its secret, with what a request needs of its user.
_BY_DIGEST = (
    select(
        credentials.c.pk,
        credentials.c.kind,
        credentials.c.expires_at,
        credentials.c.revoked,
        users.c.name,
        users.c.role,
        users.c.unix_user,
        users.c.disabled,
    )
    .join_from(credentials, users)
    .where(credentials.c.digest == bindparam("digest"))
)
_CREDENTIAL_SELECT = select(
    credentials.c.pk,
    users.c.name,
    credentials.c.kind,
    credentials.c.name,
    credentials.c.created_at,
    credentials.c.expires_at,
    credentials.c.revoked,
).join_from(credentials, users)


def _account(row: Sequence[Any], manages: Sequence[str]) -> Account:
    name, role, unix_user, has_password, disabled, created_at = row
    return Account(
        name, Role(role), unix_user, bool(has_password), bool(disabled), int(created_at),
        tuple(manages),
    )  # fmt: skip


def _credential(row: Sequence[Any]) -> Credential:
    pk, user, kind, name, created_at, expires_at, revoked = row
    expires = None if expires_at is None else int(expires_at)
    return Credential(int(pk), user, kind, name, int(created_at), expires, bool(revoked))


class AccountStore:
    """Reads and writes of ``users``' identity columns, ``credentials`` and ``audit``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._user_pks: dict[str, int] = {}

    # ---- users -----------------------------------------------------------------------------

    def account(self, name: str) -> Account | None:
        with self.store.read() as conn:
            row = conn.execute(_USER_SELECT.where(users.c.name == name)).first()
            if row is None:
                return None
            return _account(row, conn.execute(_MANAGES, {"name": name}).scalars().all())

    def accounts(self) -> list[Account]:
        """Users with an identity (a role other than the default, an account, a password, a
        credential or a managed tenant) and everyone who ever booked or ran: all rows."""
        with self.store.read() as conn:
            rows = conn.execute(_USER_SELECT.order_by(users.c.name)).all()
            managed = conn.execute(
                select(users.c.name, tenants.c.id)
                .join_from(memberships, tenants)
                .join(users)
                .where(memberships.c.manager.is_(True))
            ).all()
        by_user: dict[str, list[str]] = {}
        for name, tenant_id in managed:
            by_user.setdefault(name, []).append(tenant_id)
        return [_account(row, sorted(by_user.get(row[0], []))) for row in rows]

    def save_user(self, name: str, now: Instant, **values: object) -> Account:
        """Create ``name`` if needed, then set ``values`` (role, unix_user, password_hash,
        disabled); returns the stored account."""
        with self.store.write() as conn:
            pk = user_pk(conn, name, now, self._user_pks)
            if values:
                conn.execute(update(users).where(users.c.pk == pk).values(**values))
        found = self.account(name)
        assert found is not None
        return found

    def password_hash(self, name: str) -> str | None:
        with self.store.read() as conn:
            found = conn.execute(select(users.c.password_hash).where(users.c.name == name)).scalar()
        return None if found is None else str(found)

    def count_admins(self) -> int:
        with self.store.read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(users)
                    .where(users.c.role == Role.ADMIN.value)
                    .where(users.c.disabled.is_(False))
                ).scalar_one()
            )

    # ---- credentials -----------------------------------------------------------------------

    def add_credential(
        self, user: str, kind: str, name: str, digest: str, now: Instant, expires: int | None
    ) -> Credential:
        with self.store.write() as conn:
            pk = user_pk(conn, user, now, self._user_pks)
            new = conn.execute(
                credentials.insert().values(
                    user_pk=pk,
                    kind=kind,
                    name=name,
                    digest=digest,
                    created_at=now,
                    expires_at=expires,
                    revoked=False,
                )
            ).inserted_primary_key
            assert new is not None
            return Credential(int(new[0]), user, kind, name, now, expires, False)

    def by_digest(self, digest: str) -> tuple[Any, ...] | None:
        """``(pk, kind, expires_at, revoked, user, role, unix_user, disabled)``."""
        with self.store.read() as conn:
            row = conn.execute(_BY_DIGEST, {"digest": digest}).first()
        return None if row is None else tuple(row)

    def credential(self, credential_id: int) -> Credential | None:
        with self.store.read() as conn:
            row = conn.execute(_CREDENTIAL_SELECT.where(credentials.c.pk == credential_id)).first()
        return None if row is None else _credential(row)

    def credentials(self, user: str | None, kinds: Sequence[str]) -> list[Credential]:
        query = _CREDENTIAL_SELECT.where(credentials.c.kind.in_(kinds))
        if user is not None:
            query = query.where(users.c.name == user)
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(credentials.c.pk)).all()
        return [_credential(row) for row in rows]

    def revoke(self, credential_id: int) -> bool:
        """Revoke one credential; ``False`` when it was already revoked."""
        with self.store.write() as conn:
            changed = conn.execute(
                update(credentials)
                .where(and_(credentials.c.pk == credential_id, credentials.c.revoked.is_(False)))
                .values(revoked=True)
            ).rowcount
        return bool(changed)

    def revoke_all(self, user: str) -> int:
        with self.store.write() as conn:
            pk = find_user_pk(conn, user)
            if pk is None:
                return 0
            return int(
                conn.execute(
                    update(credentials)
                    .where(credentials.c.user_pk == pk)
                    .where(credentials.c.revoked.is_(False))
                    .values(revoked=True)
                ).rowcount
            )

    # ---- tenant managers -------------------------------------------------------------------

    def set_manager(self, tenant_id: str, user: str, manager: bool) -> None:
        """Mark an existing membership as a manager's (or not)."""
        with self.store.write() as conn:
            changed = conn.execute(
                update(memberships)
                .where(memberships.c.tenant_pk == _tenant_pk(conn, tenant_id))
                .where(memberships.c.user_pk == find_user_pk(conn, user))
                .values(manager=manager)
            ).rowcount
        if not changed:
            raise NotFound(f"'{user}' is not a member of tenant '{tenant_id}'", code="not_member")

    def managers(self, tenant_id: str) -> list[str]:
        """The managers of a tenant, by name."""
        with self.store.read() as conn:
            names = conn.execute(
                select(users.c.name)
                .join_from(memberships, users)
                .join(tenants)
                .where(tenants.c.id == tenant_id)
                .where(memberships.c.manager.is_(True))
                .order_by(users.c.name)
            ).scalars()
            return [str(name) for name in names]

    # ---- audit -----------------------------------------------------------------------------

    def record(self, entries: Sequence[AuditEntry], writes: WriteBatcher | None = None) -> None:
        """Write a batch of entries: through ``writes`` (joining the group commit of the ledger
        writes under way, instead of a commit and a write lock of its own), else in a
        transaction of its own."""
        if not entries:
            return
        rows = [_audit_values(entry) for entry in entries]

        def work(conn: Connection) -> None:
            conn.execute(audit.insert(), rows)

        if writes is not None:
            writes.run(work)
            return
        with self.store.write() as conn:
            work(conn)

    def audit(self, user: str | None, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
        """Newest first; ``user`` keeps the entries where they acted or owned the target."""
        where = [] if user is None else [(audit.c.actor == user) | (audit.c.owner == user)]
        with self.store.read() as conn:
            total = conn.execute(select(func.count()).select_from(audit).where(*where)).scalar()
            rows = conn.execute(
                select(audit).where(*where).order_by(audit.c.pk.desc()).limit(limit).offset(offset)
            ).all()
        return [_entry(row) for row in rows], int(total or 0)


def _tenant_pk(conn: Connection, tenant_id: str) -> int:
    pk = conn.execute(select(tenants.c.pk).where(tenants.c.id == tenant_id)).scalar()
    if pk is None:
        raise NotFound(f"Tenant '{tenant_id}' does not exist", code="unknown_tenant")
    return int(pk)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        int(row.at), row.actor, row.action, row.target, row.owner, bool(row.as_admin), row.via,
        row.detail, int(row.pk),
    )  # fmt: skip


def _audit_values(entry: AuditEntry) -> dict[str, object]:
    return {
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target[:256],
        "owner": entry.owner,
        "as_admin": entry.as_admin,
        "via": entry.via,
        "detail": entry.detail,
    }
