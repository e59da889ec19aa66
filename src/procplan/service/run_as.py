"""Which Unix account a job runs as, and which PIDs a client may name (ADR 0009).

Decided at submission, so that a job that could never start is a clear 400 at once rather
than a failure on a node later:

- **A server running as root** runs each batch job as its user's Unix account: the account
  the kernel proved (a local peer), else the one an admin mapped (``procplan user set NAME
  --unix-user ACCOUNT``). A user with neither is refused, as is an account that is root
  (unless ``allow_root_jobs``) or that does not exist on this host when this host runs jobs.
- **A server that is not root** (a workstation, ``--demo``) cannot switch users: its jobs run
  as its own account, as they always did.
- **PIDs** (``/acquire``, ``procplan run``) must be processes of the caller's own uid: the
  server later watches and may signal them, and never a process of someone else.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass, field

from procplan.core.errors import Forbidden, InvalidRequest
from procplan.core.identity import Principal
from procplan.service.processes import process_owner_uid


def current_account() -> str:
    """The Unix account this process runs as."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # pragma: no cover - a uid without a passwd entry (containers)
        return str(os.geteuid())


@dataclass(frozen=True, slots=True)
class RunAsPolicy:
    """``switches_users``: root and not ``--demo``; ``own_uid``/``own_account``: the server's."""

    switches_users: bool = field(default_factory=lambda: os.geteuid() == 0)
    allow_root_jobs: bool = False
    runs_jobs_here: bool = True  # this host has an agent of its own (the embedded one)
    own_uid: int = field(default_factory=os.geteuid)
    own_account: str = field(default_factory=current_account)

    def account_for(self, who: Principal) -> str:
        """The Unix account ``who``'s batch jobs run as; a 400 when there is none."""
        if not self.switches_users:
            if self.own_uid == 0 and not (who.is_admin or self.allow_root_jobs):
                raise InvalidRequest(
                    "this server runs as root without switching users (--demo), so its batch "
                    "jobs would run as root: only its admins submit them",
                    code="root_job",
                )
            return self.own_account
        account = who.unix_user
        if not account:
            raise InvalidRequest(
                f"user '{who.name}' has no Unix account to run batch jobs as; an admin maps "
                f"one with `procplan user set {who.name} --unix-user ACCOUNT`",
                code="no_unix_account",
            )
        try:
            uid = pwd.getpwnam(account).pw_uid
        except KeyError:
            if self.runs_jobs_here:
                raise InvalidRequest(
                    f"Unix account '{account}' of user '{who.name}' does not exist on this host",
                    code="no_unix_account",
                ) from None
            return account
        if uid == 0 and not self.allow_root_jobs:
            raise InvalidRequest(
                "batch jobs do not run as root (start the server with --allow-root-jobs "
                "to permit it)",
                code="root_job",
            )
        return account


def caller_uid(who: Principal) -> int | None:
    """The uid the kernel proved for a local peer, else that of the mapped Unix account."""
    if who.uid is not None:
        return who.uid
    if who.unix_user:
        try:
            return pwd.getpwnam(who.unix_user).pw_uid
        except KeyError:
            return None
    return None


def check_own_pid(who: Principal, pid: int) -> int:
    """``pid``'s owner uid, once it is the caller's own process (400/403 otherwise)."""
    owner = process_owner_uid(pid)
    if owner is None:
        raise InvalidRequest(f"no process with pid {pid} on this machine", code="no_such_process")
    mine = caller_uid(who)
    if mine is None:
        raise Forbidden(
            f"'{who.name}' has no Unix account on this host, so names no process here",
            code="not_your_process",
        )
    if owner != mine or pid in (os.getpid(), os.getppid()):
        raise Forbidden(f"process {pid} is not yours", code="not_your_process")
    return owner
