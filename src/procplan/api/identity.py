"""Who sent this request: a principal proven by a secret or by the kernel (ADR 0009).

In order, the first that applies:

1. ``Authorization: Bearer <secret>`` — an API token or a session's secret (``procplan
   login``); a wrong or expired one is a 401, never a silent fall-back to another identity;
2. the ``procplan_session`` cookie of a web sign-in (one that no longer verifies is a 401:
   the page must not go on as the machine's user);
3. a trusted reverse proxy's user header (single sign-on), only from the proxy's addresses;
4. the peer's uid, which the server's connection protocol read from the kernel when the
   connection was made (``SO_PEERCRED`` on the Unix socket, the socket table for loopback
   TCP) — not for a connection that relays someone else's request (``Forwarded``);
5. nobody.

``X-ProcPlan-User`` is not an identity: naming another user there is a request to act for
them, which only admins may make (the audit log keeps the admin as the actor).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request

from procplan.api.threads import run_in_threadpool
from procplan.core.errors import InvalidRequest, Unauthorized
from procplan.core.identity import NOBODY, Principal
from procplan.core.text import name_problem
from procplan.service.accounts import SESSION, TOKEN, AccountService, CacheMiss

SESSION_COOKIE = "procplan_session"
PEER_UID = "procplan.peer_uid"  # scope["state"] key set per connection by peercred.py
ACT_AS_HEADER = "x-procplan-user"
_PRINCIPAL = "procplan.principal"
_RELAYED = ("forwarded", "x-forwarded-for", "x-real-ip")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """How this server recognises people; built from ``Settings`` by the composition root."""

    accounts: AccountService
    peer_identity: bool = True
    proxy_header: str | None = None  # e.g. "X-Forwarded-User" (oauth2-proxy, Authelia)
    proxies: Sequence[Network] = ()
    open_compat_writes: bool = False

    def from_proxy(self, client_host: str | None) -> bool:
        if not self.proxies or client_host is None:
            return False
        try:
            address = ipaddress.ip_address(client_host)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)


def identity_config(request: Request) -> IdentityConfig:
    config: IdentityConfig = request.app.state.identity
    return config


def principal_of(request: Request) -> Principal:
    """The request's principal (resolved once per request), acting for another user when an
    admin asked to with ``X-ProcPlan-User``. Reads the store on a cache miss: call it from a
    worker thread, or ``await principal(request)`` on the event loop."""
    found = request.scope.get(_PRINCIPAL)
    if found is None:
        config = identity_config(request)
        found = _acting(request, config, authenticate(request, config))
        request.scope[_PRINCIPAL] = found
    return found


async def principal(request: Request) -> Principal:
    """``principal_of`` for the event loop: answered from the caches when they know the
    credential, else resolved in a worker thread."""
    found = request.scope.get(_PRINCIPAL)
    if found is not None:
        return found  # type: ignore[no-any-return]
    config = identity_config(request)
    try:
        found = _acting(request, config, authenticate(request, config, True), True)
    except CacheMiss:
        return await run_in_threadpool(principal_of, request)
    request.scope[_PRINCIPAL] = found
    return found


def authenticate(request: Request, config: IdentityConfig, cached_only: bool = False) -> Principal:
    headers = request.headers
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized("only 'Authorization: Bearer <token>' is accepted", code="bad_auth")
        proven = config.accounts.verify(secret.strip(), (TOKEN, SESSION), cached_only)
        if proven is None:
            raise Unauthorized("the token is unknown, revoked or expired", code="bad_token")
        return proven
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        proven = config.accounts.verify(cookie, (SESSION,), cached_only)
        if proven is None:  # never fall back to another identity (the machine's user)
            raise Unauthorized("your session has ended: sign in again", code="session_expired")
        return proven
    client = request.client.host if request.client else None
    from_proxy = config.from_proxy(client)
    if config.proxy_header and from_proxy:
        name = headers.get(config.proxy_header, "").strip()
        if name and len(name) <= 128 and name_problem(name) is None:
            return config.accounts.proxied(name, cached_only) or NOBODY
        return NOBODY  # the proxy lets nobody through unnamed
    uid = _peer_uid(request)
    relayed = any(header in headers for header in _RELAYED)
    if uid is not None and config.peer_identity and not relayed and not from_proxy:
        return config.accounts.peer(uid, cached_only) or NOBODY
    return NOBODY


def _peer_uid(request: Request) -> int | None:
    state = request.scope.get("state")
    uid = state.get(PEER_UID) if isinstance(state, dict) else None
    return uid if isinstance(uid, int) else None


def _acting(
    request: Request, config: IdentityConfig, principal: Principal, cached_only: bool = False
) -> Principal:
    claimed = request.headers.get(ACT_AS_HEADER, "").strip()
    if not claimed or claimed == principal.name or not principal.proven:
        return principal  # nobody proven: the route's policy answers (401 for a write)
    if not principal.is_admin and request.method in ("GET", "HEAD"):
        return principal  # a name on a read changes nothing: old clients send theirs
    problem = name_problem(claimed) if len(claimed) <= 128 else "is too long"
    if problem is not None:
        raise InvalidRequest(f"the X-ProcPlan-User header {problem}", code="invalid_user")
    if not principal.is_admin:
        return principal.acting_for(claimed)  # the 403
    return config.accounts.acted_for(principal, claimed, cached_only)
