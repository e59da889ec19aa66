"""Identity routes (issue #12): who am I, sign in and out, users, tokens, the audit log.

Secrets (tokens, sessions, login links) appear once, in the answer that creates them; lists
show their ids, names and dates. Sign-in answers a wrong user and a wrong password alike.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from procplan.api.boundary import body_doc, query_doc, read_body, read_query
from procplan.api.deps import ctx
from procplan.api.identity import SESSION_COOKIE, principal
from procplan.api.models.accounts import ListQuery, SignIn, TokenCreate, UserCreate, UserPatch
from procplan.api.models.fields import INT32_MAX, MAX_NAME
from procplan.api.policy import PolicedRoute
from procplan.api.prefix import root_path
from procplan.api.responses import json_response
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import Forbidden, Unauthorized
from procplan.core.identity import Principal, Role
from procplan.wire.accounts import (
    account_json,
    audit_page,
    me_json,
    signed_out,
    token_created,
    token_revoked,
    tokens_json,
    users_json,
)
from procplan.wire.accounts import (
    login_link as login_link_json,
)

router = APIRouter(prefix="/api/v1", tags=["identity"], route_class=PolicedRoute)

UserName = Annotated[str, Path(max_length=MAX_NAME)]


def _self_or_admin(who: Principal, name: str) -> None:
    if who.name != name and not who.is_admin:
        raise Forbidden(f"only '{name}' and admins may do this", code="not_admin")


# ---- who am I, signing in and out ----------------------------------------------------------


@router.get("/me")
async def me(request: Request) -> Response:
    """The caller as the server sees them (``user: null`` when nobody is signed in)."""
    return json_response(me_json(await principal(request)))


def cookie_path(request: Request) -> str:
    """The session cookie's path: the root path under a reverse proxy's prefix (the browser
    then sends it to this site's pages only, not to other sites on the same host), else
    ``/``."""
    return root_path(request.scope) or "/"


@router.post("/session", openapi_extra=body_doc(SignIn, required=True))
async def sign_in(request: Request) -> Response:
    """Sign in with a password or a one-time login link: sets the session cookie
    (HttpOnly, SameSite=Lax, Secure under HTTPS)."""
    ask = await read_body(request, SignIn)
    accounts = ctx(request).accounts
    if ask.link is not None:
        who = await run_in_threadpool(accounts.redeem_link, ask.link)
    else:
        assert ask.user is not None and ask.password is not None
        source = request.client.host if request.client else ""
        who = await run_in_threadpool(accounts.check_password, ask.user, ask.password, source)
    if who is None:
        raise Unauthorized("wrong user or password, or a used or expired link", "bad_sign_in")
    secret = await run_in_threadpool(accounts.start_session, who.name or "")
    response = json_response(me_json(who, secret if ask.token else None))
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=accounts.settings.session_s,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path=cookie_path(request),
    )
    return response


@router.delete("/session")
async def sign_out(request: Request) -> Response:
    """End the web session (the cookie's secret is revoked, not only forgotten)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        await run_in_threadpool(ctx(request).accounts.revoke_secret, secret)
    response = json_response(signed_out())
    response.delete_cookie(SESSION_COOKIE, path=cookie_path(request))
    return response


# ---- users ---------------------------------------------------------------------------------


@router.get("/users")
async def list_users(request: Request) -> Response:
    accounts = await run_in_threadpool(ctx(request).accounts.accounts)
    return json_response(users_json(accounts))


@router.post("/users", status_code=201, openapi_extra=body_doc(UserCreate, required=True))
async def add_user(request: Request) -> Response:
    ask = await read_body(request, UserCreate)
    context = ctx(request)
    made = await run_in_threadpool(
        context.accounts.add_user, ask.name, Role(ask.role), ask.unix_user, ask.password
    )
    context.audit.record(await principal(request), "user.add", f"user {ask.name}", ask.name)
    return json_response(account_json(made), 201)


@router.get("/users/{name}")
async def get_user(request: Request, name: UserName) -> Response:
    _self_or_admin(await principal(request), name)
    return json_response(account_json(await run_in_threadpool(ctx(request).accounts.account, name)))


@router.patch("/users/{name}", openapi_extra=body_doc(UserPatch, required=True))
async def set_user(request: Request, name: UserName) -> Response:
    """Admins change anything; a user changes their own password only."""
    ask = await read_body(request, UserPatch)
    who = await principal(request)
    given = ask.model_fields_set
    if not who.is_admin and (who.name != name or given != {"password"}):
        raise Forbidden("users may change their own password; the rest needs an admin", "not_admin")
    context = ctx(request)
    changed = await run_in_threadpool(
        lambda: context.accounts.set_user(
            name,
            role=None if ask.role is None else Role(ask.role),
            unix_user=ask.unix_user or None,
            clear_unix_user="unix_user" in given and not ask.unix_user,
            password=ask.password,
            disabled=ask.disabled,
        )
    )
    context.audit.record(who, "user.set", f"user {name}", name, ",".join(sorted(given)))
    return json_response(account_json(changed))


@router.delete("/users/{name}")
async def remove_user(request: Request, name: UserName) -> Response:
    """Disable the user and revoke their credentials; their bookings and jobs stay."""
    context = ctx(request)
    removed = await run_in_threadpool(context.accounts.remove_user, name)
    context.audit.record(await principal(request), "user.remove", f"user {name}", name)
    return json_response(account_json(removed))


@router.post("/users/{name}/login-link")
async def login_link(request: Request, name: UserName) -> Response:
    """A one-time sign-in link for ``name`` (valid for ``link_s``), shown once."""
    context = ctx(request)
    await run_in_threadpool(context.accounts.account, name)
    secret = await run_in_threadpool(context.accounts.login_link, name)
    context.audit.record(await principal(request), "user.login_link", f"user {name}", name)
    base = str(request.base_url).rstrip("/")
    return json_response(login_link_json(name, f"{base}/login.html#link={secret}"))


# ---- tokens --------------------------------------------------------------------------------


@router.get("/tokens", openapi_extra=query_doc(ListQuery))
async def list_tokens(request: Request) -> Response:
    """Your tokens and sessions; an admin's list is everyone's (or ``user``'s)."""
    ask = read_query(request, ListQuery)
    who = await principal(request)
    user = ask.user if who.is_admin else who.name
    if ask.user is not None:
        _self_or_admin(who, ask.user)
    made = await run_in_threadpool(ctx(request).accounts.credentials, user)
    return json_response(tokens_json(made))


@router.post("/tokens", status_code=201, openapi_extra=body_doc(TokenCreate, required=True))
async def create_token(request: Request) -> Response:
    """A new API token; ``token`` in the answer is its secret, shown this once."""
    ask = await read_body(request, TokenCreate)
    who = await principal(request)
    user = ask.user or who.name or ""
    _self_or_admin(who, user)
    context = ctx(request)
    expires = ask.expires_at
    if ask.expires_in_s is not None:
        expires = context.bookings.clock.now() + ask.expires_in_s
    secret, made = await run_in_threadpool(context.accounts.create_token, user, ask.name, expires)
    context.audit.record(who, "token.create", f"token {made.id}", user, ask.name)
    return json_response(token_created(made, secret), 201)


@router.delete("/tokens/{token_id}")
async def revoke_token(
    request: Request, token_id: Annotated[int, Path(ge=1, le=INT32_MAX)]
) -> Response:
    who = await principal(request)
    context = ctx(request)
    made = await run_in_threadpool(context.accounts.credential, token_id)
    _self_or_admin(who, made.user)
    await run_in_threadpool(context.accounts.revoke, token_id)
    context.audit.record(who, "token.revoke", f"token {token_id}", made.user)
    return json_response(token_revoked(made))


# ---- the audit log -------------------------------------------------------------------------


@router.get("/audit", openapi_extra=query_doc(ListQuery))
async def audit_log(request: Request) -> Response:
    """Newest first. Admins see every entry (or ``user``'s); users the entries where they
    acted or owned the target."""
    ask = read_query(request, ListQuery)
    who = await principal(request)
    user = ask.user if who.is_admin else who.name
    entries, total = await run_in_threadpool(
        ctx(request).audit.entries, user, ask.limit, ask.offset
    )
    return json_response(audit_page(entries, total))
