"""Identity answers (issue #12, ADR 0009): who am I, users, tokens, the audit log.

Secrets (tokens, sessions, login links) appear once, in the answer that creates them; every
other shape shows ids, names and dates only.
"""

from __future__ import annotations

from collections.abc import Iterable

from procplan.core.identity import Account, AuditEntry, Credential, Principal
from procplan.wire.base import Json, iso_or_none

__all__ = [
    "account_json",
    "audit_json",
    "audit_page",
    "credential_json",
    "login_link",
    "me_json",
    "signed_out",
    "token_created",
    "token_revoked",
    "tokens_json",
    "users_json",
]


def me_json(who: Principal, token: str | None = None) -> Json:
    """The caller as the server sees them (``user: null`` when nobody is signed in); a
    sign-in that asked for one adds its session ``token``."""
    answer: Json = {
        "user": who.name if who.proven else None,
        "role": who.role.value if who.proven else None,
        "via": who.via.value,
        "unix_user": who.unix_user,
        "manages": sorted(who.manages),
        "acting_as_admin_for": who.name if who.acting_for_other else None,
        "actor": who.actor or who.name,
    }
    if token is not None:
        answer["token"] = token
    return answer


def signed_out() -> Json:
    return {"signed_out": True}


def account_json(account: Account) -> Json:
    return {
        "name": account.name,
        "role": account.role.value,
        "unix_user": account.unix_user,
        "has_password": account.has_password,
        "disabled": account.disabled,
        "manages": list(account.manages),
        "created_at": iso_or_none(account.created_at),
    }


def users_json(accounts: Iterable[Account]) -> Json:
    return {"users": [account_json(a) for a in accounts]}


def login_link(user: str, url: str) -> Json:
    """A one-time sign-in link, shown once."""
    return {"user": user, "url": url}


def credential_json(made: Credential) -> Json:
    return {
        "id": made.id,
        "user": made.user,
        "kind": made.kind,
        "name": made.name,
        "created_at": iso_or_none(made.created_at),
        "expires_at": iso_or_none(made.expires_at),
        "revoked": made.revoked,
    }


def tokens_json(made: Iterable[Credential]) -> Json:
    return {"tokens": [credential_json(c) for c in made]}


def token_created(made: Credential, secret: str) -> Json:
    """A new token with its secret, shown this once."""
    return {**credential_json(made), "token": secret}


def token_revoked(made: Credential) -> Json:
    return {**credential_json(made), "revoked": True}


def audit_json(entry: AuditEntry) -> Json:
    return {
        "id": entry.id,
        "at": iso_or_none(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "owner": entry.owner,
        "as_admin": entry.as_admin,
        "via": entry.via,
        "detail": entry.detail,
    }


def audit_page(entries: Iterable[AuditEntry], total: int) -> Json:
    """Newest first, with the total for paging."""
    return {"entries": [audit_json(e) for e in entries], "total": total}
