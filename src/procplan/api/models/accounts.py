"""Requests of the identity routes: sign-in, users, tokens, the audit log (issue #12)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, model_validator

from procplan.api.models.fields import (
    INT32_MAX,
    MAX_LABEL,
    Flag,
    Integer,
    Name,
    Text,
    Timestamp,
    problem,
)

MAX_PASSWORD = 1024
MAX_SECRET = 128
ROLES = ("admin", "user")


class Role(Name):
    """``admin`` or ``user``."""

    def check(self, value: Any, field: str) -> str:
        role = super().check(value, field)
        if role not in ROLES:
            raise problem(f"{field} must be one of {', '.join(ROLES)}")
        return role

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(ROLES)}


class SignIn(BaseModel):
    """``POST /api/v1/session``: a user and password, or a one-time login link's token.
    ``token: true`` also returns the session's secret (``procplan login`` keeps it)."""

    model_config = ConfigDict(extra="forbid")

    user: Annotated[str | None, Name()] = None
    password: Annotated[str | None, Text(MAX_PASSWORD, strip=False)] = None
    link: Annotated[str | None, Name(MAX_SECRET)] = None
    token: Annotated[bool, Flag()] = False

    @model_validator(mode="after")
    def _one_way(self) -> SignIn:
        if self.link is None and (self.user is None or self.password is None):
            raise problem("give 'user' and 'password', or the 'link' of a login link")
        return self


class UserCreate(BaseModel):
    """``POST /api/v1/users``."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Name()]
    role: Annotated[str, Role()] = "user"
    unix_user: Annotated[str | None, Name()] = None
    password: Annotated[str | None, Text(MAX_PASSWORD, strip=False)] = None


class UserPatch(BaseModel):
    """``PATCH /api/v1/users/{name}``: only the keys given change (``unix_user: null`` clears
    the mapping)."""

    model_config = ConfigDict(extra="forbid")

    role: Annotated[str | None, Role()] = None
    unix_user: Annotated[str | None, Name(empty_ok=True)] = None
    password: Annotated[str | None, Text(MAX_PASSWORD, strip=False)] = None
    disabled: Annotated[bool | None, Flag()] = None

    @model_validator(mode="after")
    def _something(self) -> UserPatch:
        if not self.model_fields_set:
            raise problem("nothing to change: give role, unix_user, password or disabled")
        return self


class TokenCreate(BaseModel):
    """``POST /api/v1/tokens``: for yourself, or (admins) for ``user``."""

    model_config = ConfigDict(extra="forbid")

    user: Annotated[str | None, Name()] = None
    name: Annotated[str, Name(MAX_LABEL, empty_ok=True)] = ""
    expires_at: Annotated[int | None, Timestamp()] = None
    expires_in_s: Annotated[int | None, Integer(60, INT32_MAX)] = None


class ListQuery(BaseModel):
    """Paging (and, for admins, one user's entries) of lists."""

    model_config = ConfigDict(extra="ignore")

    user: Annotated[str | None, Name()] = None
    limit: Annotated[int, Integer(1, 1000)] = 100
    offset: Annotated[int, Integer(0, INT32_MAX)] = 0
