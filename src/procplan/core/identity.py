"""Who is asking, and what each kind of route lets them do (issue #12, ADR 0009).

Pure values: the API resolves a ``Principal`` from something the kernel or a secret proves
(a token, a session, a trusted proxy's header, the peer credentials of a local socket) and
asks these functions whether it may act. Names the client merely claims never become a
principal; they are at most a request to act *for* someone, which only admins may make.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from procplan.core.errors import Forbidden, Unauthorized


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


class Via(StrEnum):
    """How the principal was proven; shown by ``GET /api/v1/me`` and kept in the audit log."""

    TOKEN = "token"
    SESSION = "session"
    PEER = "peer"  # SO_PEERCRED on the Unix socket, the kernel's socket table on loopback TCP
    PROXY = "proxy"  # a trusted reverse proxy's user header
    OPEN = "open"  # nobody proven, but the admin opened compatibility writes
    ANONYMOUS = "anonymous"


class Policy(StrEnum):
    """What a route requires; every route names one in ``api/policy.py``'s table."""

    PUBLIC = "public"  # anyone, signed in or not (reads of the shared calendar and queue)
    AUTHENTICATED = "authenticated"  # a proven user
    OWNER = "owner"  # a proven user; the route lets only the object's owner or an admin act
    COMPAT_WRITE = "compat_write"  # OWNER, or anyone where compatibility writes are open
    TENANT_MANAGER = "tenant_manager"  # an admin or a manager of the path's tenant
    ADMIN = "admin"
    AGENT = "agent"  # the cluster's agent token, checked by the agent routes themselves
    FEED = "feed"  # a calendar feed's URL secret, checked by the feed routes (ADR 0022)


ANONYMOUS_NAME = "anonymous"  # the one user unproven compatibility writes act as
SIGN_IN_HINT = (
    "sign in: send 'Authorization: Bearer <token>' (`procplan token create`, `procplan login`), "
    "use the web sign-in, or connect from the server's own host"
)


@dataclass(frozen=True, slots=True)
class Principal:
    """A proven user (or nobody): ``name`` is whom requests act as, ``actor`` who sent them
    (they differ only when an admin acts for another user)."""

    name: str | None
    role: Role = Role.USER
    via: Via = Via.ANONYMOUS
    unix_user: str | None = None
    uid: int | None = None  # the kernel-proven uid of a local peer
    manages: frozenset[str] = field(default_factory=frozenset)  # tenant ids
    actor: str | None = None

    @property
    def proven(self) -> bool:
        return self.name is not None and self.via is not Via.OPEN

    @property
    def is_admin(self) -> bool:
        return self.proven and self.role is Role.ADMIN

    @property
    def acting_for_other(self) -> bool:
        return self.actor is not None and self.actor != self.name

    def acting_for(self, user: str) -> Principal:
        """The same admin, acting as ``user`` (its owner checks and defaults become
        ``user``'s; the audit log keeps the admin as the actor)."""
        if user == self.name:
            return self
        if not self.is_admin:
            raise Forbidden(
                f"only admins act for other users; you are '{self.name or ANONYMOUS_NAME}'",
                code="not_admin",
            )
        return replace(self, name=user, unix_user=None, uid=None, actor=self.actor or self.name)


NOBODY = Principal(None)
OPEN_COMPAT = Principal(ANONYMOUS_NAME, via=Via.OPEN)


def require(principal: Principal, policy: Policy, tenant_id: str | None = None) -> None:
    """Refuse (401 or 403) what ``policy`` does not allow ``principal``; ``OWNER`` and
    ``COMPAT_WRITE`` only need someone here, the route checks the owner with ``may_change``."""
    if policy in (Policy.PUBLIC, Policy.AGENT, Policy.FEED):
        return
    if policy is Policy.COMPAT_WRITE and principal.via is Via.OPEN:
        return
    if not principal.proven:
        raise Unauthorized(SIGN_IN_HINT, code="unauthenticated")
    if policy is Policy.ADMIN and not principal.is_admin:
        raise Forbidden("this needs an admin", code="not_admin")
    if policy is Policy.TENANT_MANAGER and not may_manage(principal, tenant_id):
        raise Forbidden(
            f"only admins and managers of tenant '{tenant_id}' may do this", code="not_manager"
        )


def may_manage(principal: Principal, tenant_id: str | None) -> bool:
    return principal.is_admin or (tenant_id is not None and tenant_id in principal.manages)


def may_change(principal: Principal, owner: str, what: str) -> None:
    """Owners change their own bookings and jobs, admins anyone's; 403 otherwise."""
    if principal.name == owner or principal.is_admin:
        return
    raise Forbidden(
        f"{what} belongs to '{owner}'; only its owner or an admin may change it",
        code="not_owner",
    )


def may_see_private(principal: Principal, owner: str) -> bool:
    """Job environments and logs: the owner's and admins' eyes only."""
    return principal.proven and (principal.name == owner or principal.is_admin)


def admin_acting(principal: Principal, owner: str) -> bool:
    """True when this change is an admin's on someone else's object (audit: 'as admin')."""
    actor = principal.actor or principal.name
    return principal.is_admin and actor != owner


@dataclass(frozen=True, slots=True)
class Account:
    """A stored user as ``procplan user list`` shows it (never the password hash)."""

    name: str
    role: Role
    unix_user: str | None
    has_password: bool
    disabled: bool
    created_at: int
    manages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Credential:
    """An API token, web session or one-time login link, as listed (never its secret)."""

    id: int
    user: str
    kind: str
    name: str
    created_at: int
    expires_at: int | None
    revoked: bool


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log: ``actor`` did ``action`` to ``target`` (owned by ``owner``);
    ``as_admin`` when the actor changed someone else's object."""

    at: int
    actor: str
    action: str
    target: str
    owner: str | None = None
    as_admin: bool = False
    via: str = ""
    detail: str = ""
    id: int = 0
