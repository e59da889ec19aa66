"""Accounts: users and roles, passwords (argon2), tokens and sessions (hashed), peer users.

A token's secret is 256 random bits shown once; the store keeps its SHA-256, which is as
good as a slow hash for a secret nobody can guess. Every request presenting one costs a
hash and, within ``cache_s``, a dictionary lookup (a revocation made by this process takes
effect at once, one made by another server process within ``cache_s``).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from procplan.core.errors import Conflict, Forbidden, InvalidRequest, NotFound, TooManyRequests
from procplan.core.identity import Account, Credential, Principal, Role, Via
from procplan.service.clock import Clock
from procplan.store.accounts_repo import AccountStore

TOKEN_PREFIX = "pp_"
TOKEN = "token"
SESSION = "session"
LINK = "link"
MIN_PASSWORD = 8
# Sign-in guessing: after this many wrong passwords for one user from one address within the
# window, that pair waits until the window has passed (argon2 already makes each try slow).
MAX_FAILED_SIGN_INS = 5
FAILED_SIGN_IN_WINDOW_S = 15 * 60
_MAX_CACHED = 10_000


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class AccountSettings:
    session_s: int = 14 * 86400
    link_s: int = 15 * 60
    cache_s: float = 5.0
    # The uids whose local processes are admins without signing in: root and the server's
    # own user (whoever can read its database is its admin anyway).
    host_admin_uids: frozenset[int] = field(default_factory=lambda: frozenset({0, os.geteuid()}))


class CacheMiss(Exception):
    """``cached_only`` lookups raise this instead of reading the store (the event loop then
    repeats the lookup in a worker thread)."""


class AccountService:
    """Users, credentials and the principals they prove; see the module docstring."""

    def __init__(
        self,
        store: AccountStore,
        clock: Clock,
        settings: AccountSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings or AccountSettings()
        self._monotonic = monotonic
        self._hasher = PasswordHasher()
        self._dummy: str | None = None  # made on the first sign-in: a hash costs ~80 ms
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], list[float]] = {}

    # ---- users -----------------------------------------------------------------------------

    def account(self, name: str) -> Account:
        found = self.store.account(name)
        if found is None:
            raise NotFound(f"User '{name}' does not exist", code="unknown_user")
        return found

    def accounts(self) -> list[Account]:
        return self.store.accounts()

    def add_user(
        self, name: str, role: Role, unix_user: str | None, password: str | None
    ) -> Account:
        """Give ``name`` an identity (it may already exist from its bookings: then only if it
        has none yet, so that ``add`` never silently changes a role)."""
        existing = self.store.account(name)
        if existing is not None and not _blank(existing):
            raise Conflict(f"User '{name}' already exists", code="user_exists")
        values: dict[str, object] = {"role": role.value, "unix_user": unix_user, "disabled": False}
        if password is not None:
            values["password_hash"] = self._hash(password)
        return self._saved(name, values)

    def set_user(
        self,
        name: str,
        *,
        role: Role | None = None,
        unix_user: str | None = None,
        clear_unix_user: bool = False,
        password: str | None = None,
        disabled: bool | None = None,
    ) -> Account:
        current = self.account(name)
        values: dict[str, object] = {}
        if role is not None:
            values["role"] = role.value
        if unix_user is not None or clear_unix_user:
            values["unix_user"] = unix_user
        if password is not None:
            values["password_hash"] = self._hash(password)
        if disabled is not None:
            values["disabled"] = disabled
        if current.role is Role.ADMIN and (role is Role.USER or disabled):
            self._keep_an_admin(name)
        account = self._saved(name, values)
        if disabled:
            self.store.revoke_all(name)
        return account

    def remove_user(self, name: str) -> Account:
        """Disable ``name`` and revoke its credentials (its bookings and jobs stay)."""
        account = self.account(name)
        if account.role is Role.ADMIN:
            self._keep_an_admin(name)
        self.store.revoke_all(name)
        return self._saved(name, {"disabled": True, "password_hash": None, "role": "user"})

    def _keep_an_admin(self, name: str) -> None:
        if self.store.count_admins() <= 1:
            raise Conflict(
                f"'{name}' is the last admin; make another user admin first", code="last_admin"
            )

    def _saved(self, name: str, values: dict[str, object]) -> Account:
        account = self.store.save_user(name, self.clock.now(), **values)
        self.forget_cached()
        return account

    def managers(self, tenant_id: str) -> list[str]:
        return self.store.managers(tenant_id)

    def set_manager(self, tenant_id: str, user: str, manager: bool) -> None:
        self.store.set_manager(tenant_id, user, manager)
        self.forget_cached()

    # ---- passwords -------------------------------------------------------------------------

    def _hash(self, password: str) -> str:
        if len(password) < MIN_PASSWORD:
            raise InvalidRequest(
                f"a password needs at least {MIN_PASSWORD} characters", code="weak_password"
            )
        return self._hasher.hash(password)

    def check_password(self, name: str, password: str, source: str = "") -> Principal | None:
        """The user's principal when ``password`` is theirs; a wrong name costs as much time as
        a wrong password (no user enumeration by timing). ``source`` (the client's address)
        with ``name`` is allowed ``MAX_FAILED_SIGN_INS`` failures per window, then a 429."""
        key = (name, source)
        self._check_attempts(key)
        stored = self.store.password_hash(name)
        try:
            self._hasher.verify(stored or self._dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            stored = None
        if stored is None:
            self._failed(key)
            return None
        with self._lock:
            self._failures.pop(key, None)
        return self.principal_of(name, Via.SESSION)

    def _dummy_hash(self) -> str:
        """What a name without a password is checked against, so that it costs as long."""
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_hex(16))
        return self._dummy

    def _recent_failures(self, key: tuple[str, str]) -> list[float]:
        since = self._monotonic() - FAILED_SIGN_IN_WINDOW_S
        recent = [at for at in self._failures.get(key, ()) if at > since]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def _check_attempts(self, key: tuple[str, str]) -> None:
        with self._lock:
            recent = self._recent_failures(key)
        if len(recent) >= MAX_FAILED_SIGN_INS:
            wait = int(recent[0] + FAILED_SIGN_IN_WINDOW_S - self._monotonic()) + 1
            raise TooManyRequests(
                f"too many wrong passwords for '{key[0]}': try again in {wait} s",
                code="too_many_attempts",
            )

    def _failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            if len(self._failures) >= _MAX_CACHED:
                self._failures.clear()
            self._recent_failures(key)
            self._failures.setdefault(key, []).append(self._monotonic())

    # ---- credentials -----------------------------------------------------------------------

    def create_token(self, user: str, name: str, expires_at: int | None) -> tuple[str, Credential]:
        """A new API token for ``user``; its secret is returned once and never stored."""
        account = self.account(user)
        if account.disabled:
            raise Forbidden(f"User '{user}' is disabled", code="user_disabled")
        if expires_at is not None and expires_at <= self.clock.now():
            raise InvalidRequest("the token would expire in the past", code="invalid_expiry")
        return self._issue(user, TOKEN, name, expires_at)

    def start_session(self, user: str) -> str:
        return self._issue(user, SESSION, "web", self.clock.now() + self.settings.session_s)[0]

    def login_link(self, user: str) -> str:
        """A one-time secret that signs ``user`` in (``/login?token=…``)."""
        return self._issue(user, LINK, "login link", self.clock.now() + self.settings.link_s)[0]

    def _issue(
        self, user: str, kind: str, name: str, expires_at: int | None
    ) -> tuple[str, Credential]:
        secret = new_secret()
        made = self.store.add_credential(
            user, kind, name, digest_of(secret), self.clock.now(), expires_at
        )
        return secret, made

    def redeem_link(self, secret: str) -> Principal | None:
        """The link's user, once: a used link is revoked."""
        row = self.store.by_digest(digest_of(secret))
        if row is None or row[1] != LINK or not self._usable(row):
            return None
        if not self.store.revoke(int(row[0])):
            return None  # someone redeemed it first
        return self.principal_of(row[4], Via.SESSION)

    def credentials(self, user: str | None) -> list[Credential]:
        return self.store.credentials(user, (TOKEN, SESSION))

    def credential(self, credential_id: int) -> Credential:
        found = self.store.credential(credential_id)
        if found is None:
            raise NotFound(f"Token {credential_id} does not exist", code="unknown_token")
        return found

    def revoke(self, credential_id: int) -> None:
        self.store.revoke(credential_id)
        self.forget_cached()

    def revoke_secret(self, secret: str) -> None:
        row = self.store.by_digest(digest_of(secret))
        if row is not None:
            self.revoke(int(row[0]))

    # ---- principals ------------------------------------------------------------------------

    def verify(
        self, secret: str, kinds: tuple[str, ...] = (TOKEN, SESSION), cached_only: bool = False
    ) -> Principal | None:
        """The principal a token or session secret proves, or ``None``."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
            return None
        key = digest_of(secret)
        principal = self._memo(key, cached_only, lambda: self._proven_by(key))
        if principal is None or principal.via.value not in kinds:
            return None
        return principal

    def _proven_by(self, digest: str) -> Principal | None:
        row = self.store.by_digest(digest)
        if row is None or row[1] not in (TOKEN, SESSION) or not self._usable(row):
            return None
        return self.principal_of(row[4], Via.TOKEN if row[1] == TOKEN else Via.SESSION)

    def _usable(self, row: tuple[object, ...]) -> bool:
        _pk, _kind, expires_at, revoked, _user, _role, _unix, disabled = row
        expired = expires_at is not None and int(str(expires_at)) <= self.clock.now()
        return not (revoked or disabled or expired)

    def principal_of(self, name: str, via: Via) -> Principal:
        account = self.account(name)
        return Principal(
            name,
            account.role,
            via,
            unix_user=account.unix_user,
            manages=frozenset(account.manages),
        )

    def peer(self, uid: int, cached_only: bool = False) -> Principal | None:
        """The local user whose process holds the other end of the connection: named by the
        kernel (never by the client), created on first sight with that login as its Unix
        account; root and the server's own user are admins."""
        return self._memo(f"uid:{uid}", cached_only, lambda: self._peer(uid))

    def _peer(self, uid: int) -> Principal | None:
        try:
            login = pwd.getpwuid(uid).pw_name
        except KeyError:
            return None
        account = self.store.account(login)
        if account is None or (account.unix_user is None and not account.disabled):
            account = self.store.save_user(login, self.clock.now(), unix_user=login)
        if account.disabled:
            return None
        host_admin = uid in self.settings.host_admin_uids
        role = Role.ADMIN if host_admin else account.role
        unix = account.unix_user or login
        return Principal(login, role, Via.PEER, unix, uid, frozenset(account.manages))

    def proxied(self, name: str, cached_only: bool = False) -> Principal | None:
        """A user named by the trusted proxy's header (created on first sight)."""
        return self._memo(f"proxy:{name}", cached_only, lambda: self._proxied(name))

    def _proxied(self, name: str) -> Principal | None:
        account = self.store.account(name) or self.store.save_user(name, self.clock.now())
        if account.disabled:
            return None
        return Principal(
            name, account.role, Via.PROXY, account.unix_user, manages=frozenset(account.manages)
        )

    def acted_for(self, admin: Principal, name: str, cached_only: bool = False) -> Principal:
        """``admin`` acting for ``name``, with ``name``'s Unix account (whose jobs run as
        that account, not as the admin's)."""

        def known() -> Principal | None:
            account = self.store.account(name)
            return None if account is None else Principal(name, unix_user=account.unix_user)

        found = self._memo(f"user:{name}", cached_only, known)
        acting = admin.acting_for(name)
        return acting if found is None else replace(acting, unix_user=found.unix_user)

    # ---- the cache -------------------------------------------------------------------------

    def _memo(
        self, key: str, cached_only: bool, compute: Callable[[], Principal | None]
    ) -> Principal | None:
        """``compute()``'s answer, remembered for ``cache_s``; ``CacheMiss`` instead of
        computing when ``cached_only``."""
        cached = self._cached(key)
        if cached is not None:
            return cached[1]
        if cached_only:
            raise CacheMiss
        value = compute()
        self._remember(key, value)
        return value

    def _cached(self, key: str) -> tuple[float, Principal | None] | None:
        entry = self._cache.get(key)
        if entry is None or entry[0] < self._monotonic():
            return None
        return entry

    def _remember(self, key: str, principal: Principal | None) -> None:
        with self._lock:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (self._monotonic() + self.settings.cache_s, principal)

    def forget_cached(self) -> None:
        with self._lock:
            self._cache.clear()


def _blank(account: Account) -> bool:
    """A user known only from its bookings and jobs (or from its peer connections)."""
    return account.role is Role.USER and not account.has_password and not account.manages
