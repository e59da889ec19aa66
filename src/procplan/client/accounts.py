"""Identity routes (issue #12, ``/api/v1``): ``client.accounts``. Who am I, sign-in, users,
API tokens, the audit log.

A part composed into ``ProcPlanClient`` over its ``Transport``. Answers stay plain dicts.
Those that create a secret (``sign_in``, ``create_token``, ``login_link``) carry it once;
callers decide whether printing it is the point of the command.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from procplan.client.auth import SESSION_COOKIE
from procplan.client.transport import Transport, drop_none, segment

JsonDict = dict[str, Any]
V1 = "/api/v1"


class AccountsApi:
    """Signing in and out, user accounts, API tokens and the audit log."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    # -- who am I, signing in and out ------------------------------------------------------

    def me(self) -> JsonDict:
        """``GET /api/v1/me`` → ``{"user", "role", "via", "unix_user", "manages",
        "acting_as_admin_for", "actor"}``; ``user`` is null when nobody is signed in."""
        return self._transport.call("GET", f"{V1}/me")

    def sign_in(self, user: str, password: str) -> JsonDict:
        """``POST /api/v1/session`` with ``token: true``: ``me`` plus ``token``, the session's
        secret (valid for the server's session lifetime, 14 days by default)."""
        body = {"user": user, "password": password, "token": True}
        return self._transport.call("POST", f"{V1}/session", body=body)

    def sign_out(self, session: str) -> JsonDict:
        """``DELETE /api/v1/session`` for the session ``session`` (revoked on the server)."""
        headers = {"Cookie": f"{SESSION_COOKIE}={session}"}
        return self._transport.call("DELETE", f"{V1}/session", headers=headers)

    # -- users (admins; a user may read themselves and change their own password) ----------

    def users(self) -> JsonDict:
        """``GET /api/v1/users`` → ``{"users": [...]}``."""
        return self._transport.call("GET", f"{V1}/users")

    def user(self, name: str) -> JsonDict:
        """``GET /api/v1/users/{name}``: one account."""
        return self._transport.call("GET", f"{V1}/users/{segment(name)}")

    def add_user(
        self,
        name: str,
        role: str = "user",
        unix_user: str | None = None,
        password: str | None = None,
    ) -> JsonDict:
        """``POST /api/v1/users`` → the account (never its password)."""
        body = {"name": name, "role": role, "unix_user": unix_user, "password": password}
        return self._transport.call("POST", f"{V1}/users", body=drop_none(body))

    def update_user(self, name: str, changes: Mapping[str, Any]) -> JsonDict:
        """``PATCH /api/v1/users/{name}``: only the keys given change (``unix_user: null``
        clears the mapping)."""
        return self._transport.call("PATCH", f"{V1}/users/{segment(name)}", body=dict(changes))

    def remove_user(self, name: str) -> JsonDict:
        """``DELETE /api/v1/users/{name}``: disabled, credentials revoked, bookings kept."""
        return self._transport.call("DELETE", f"{V1}/users/{segment(name)}")

    def login_link(self, name: str) -> JsonDict:
        """``POST /api/v1/users/{name}/login-link`` → ``{"user", "url"}`` (one-time)."""
        return self._transport.call("POST", f"{V1}/users/{segment(name)}/login-link")

    # -- API tokens ------------------------------------------------------------------------

    def create_token(
        self,
        user: str | None = None,
        name: str | None = None,
        expires_at: str | None = None,
        expires_in_s: int | None = None,
    ) -> JsonDict:
        """``POST /api/v1/tokens`` → the token's record plus ``token``, its secret."""
        body = {"user": user, "name": name, "expires_at": expires_at, "expires_in_s": expires_in_s}
        return self._transport.call("POST", f"{V1}/tokens", body=drop_none(body))

    def tokens(self, user: str | None = None) -> JsonDict:
        """``GET /api/v1/tokens`` → ``{"tokens": [...]}`` (ids and dates, never secrets)."""
        return self._transport.call("GET", f"{V1}/tokens", params={"user": user})

    def revoke_token(self, token_id: int) -> JsonDict:
        """``DELETE /api/v1/tokens/{id}``."""
        return self._transport.call("DELETE", f"{V1}/tokens/{token_id}")

    # -- the audit log ---------------------------------------------------------------------

    def audit(
        self, user: str | None = None, limit: int | None = None, offset: int | None = None
    ) -> JsonDict:
        """``GET /api/v1/audit`` → ``{"entries": [...], "total"}``, newest first."""
        params = {"user": user, "limit": limit, "offset": offset}
        return self._transport.call("GET", f"{V1}/audit", params=params)
