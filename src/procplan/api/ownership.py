"""Owner checks and audit entries for the routes that change bookings and jobs (ADR 0009).

Changes pass ``owner_check`` to the service, which runs it on the object it read for the
change (in the write transaction for bookings). Routes that only renew or wait read the job
first: the owner of a booking or job never changes, so that is as safe. An id that does not
exist passes: the call then answers its usual 404, with the message each API promises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from starlette.requests import Request

from procplan.api.deps import ctx
from procplan.api.identity import principal
from procplan.api.threads import run_in_threadpool
from procplan.core.errors import NotFound
from procplan.core.identity import ANONYMOUS_NAME, Principal, may_change
from procplan.service.accounts import CacheMiss


class Owned(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def user(self) -> str: ...


async def acting(request: Request, named: str | None = None) -> Principal:
    """The principal, acting for ``named`` when the body names another user (admins only:
    anyone else gets the 403), with that user's Unix account."""
    who = await principal(request)
    if not named or named == who.name or not who.is_admin:
        return who if not named else who.acting_for(named)
    accounts = ctx(request).accounts
    try:
        return accounts.acted_for(who, named, cached_only=True)
    except CacheMiss:
        return await run_in_threadpool(accounts.acted_for, who, named)


def owner_name(who: Principal) -> str:
    """Whom a new booking or job belongs to."""
    return who.name or ANONYMOUS_NAME


def owner_check(who: Principal, what: str) -> Callable[[Owned], None]:
    """The check a service runs on the booking or job it is about to change (inside the
    write for bookings, so no extra read): the owner or an admin, else a 403."""

    def check(found: Owned) -> None:
        may_change(who, found.user, f"{what} {found.id}")

    return check


async def job_owner(request: Request, job_id: int) -> Principal:
    """The principal, once it may renew or wait on job ``job_id`` (its owner or an admin)."""
    who = await principal(request)
    try:
        job = await run_in_threadpool(ctx(request).jobs.get, job_id)
    except NotFound:
        return who
    owner_check(who, "job")(job)
    return who


def audit(
    request: Request, who: Principal, action: str, target: str, owner: str | None, detail: str = ""
) -> None:
    ctx(request).audit.record(who, action, target, owner, detail)
