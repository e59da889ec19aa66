"""Real Unix users for end-to-end tests: made with ``useradd``, removed with ``userdel``.

Their commands run through ``setpriv`` (which execs, so a PID we hold is the user's own
process) with a login-like environment. Their homes are under a fresh 0755 directory in /tmp
(pytest's own temporary directory is root's only). When the interpreter is under a
directory they may not enter (``/root/.pyenv``), ``UnixUsers`` adds the search bit (``o+x``,
never read) to the directories in the way and puts the modes back afterwards.

Use ``user_homes()`` and ``unix_users(homes)`` from module-scoped fixtures::

    with unix_users(homes) as users:
        alice, bob = users.make("alice", "bob")
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import missing_dependency

import procplan
from procplan.testing import wait_until

__all__ = ["PY", "UnixUsers", "User", "processes_of", "unix_users", "user_homes"]

PY = sys.executable
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class User:
    """A Unix user made for a test module."""

    name: str
    uid: int
    gid: int
    home: Path

    def env(self) -> dict[str, str]:
        """A login-like environment: no PROCPLAN_TOKEN, PROCPLAN_AS or PROCPLAN_URL of ours."""
        return {"PATH": CLEAN_PATH, "HOME": str(self.home), "USER": self.name,
                "LOGNAME": self.name, "LANG": "C.UTF-8"}  # fmt: skip

    def argv(self, *args: str) -> list[str]:
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args), env=self.env(), cwd=self.home, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def procplan(self, url: str, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``procplan COMMAND --url URL ARGS`` as this user, who has never signed in."""
        return self.run(PY, "-m", "procplan.cli.main", command, "--url", url, *args)

    def request(
        self, method: str, url: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """One HTTP request from a process of this user (httpx, no credential)."""
        code = (
            "import json, sys, httpx; "
            "r = httpx.request(sys.argv[1], sys.argv[2], json=json.loads(sys.argv[3]), "
            "timeout=30); print(json.dumps([r.status_code, r.json()]))"
        )
        done = self.run(PY, "-c", code, method, url, json.dumps(body))
        assert done.returncode == 0, done.stderr
        status, answer = json.loads(done.stdout)
        return int(status), answer


def processes_of(uid: int) -> list[int]:
    """The PIDs of the processes ``uid`` owns."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
    return pids


def _blocked_dirs(paths: list[Path]) -> list[Path]:
    """The directories on the way to ``paths`` that other users may not enter."""
    found: dict[Path, None] = {}
    for path in paths:
        for directory in [*reversed(path.parents), path]:
            if directory.is_dir() and not directory.stat().st_mode & stat.S_IXOTH:
                found[directory] = None
    return list(found)


def _can_run_procplan(user: User) -> subprocess.CompletedProcess[str]:
    return user.run(PY, "-c", "import httpx, procplan.cli.main")


def _add_user(name: str, homes: Path) -> User:
    home = homes / name
    subprocess.run(
        ["useradd", "-m", "-d", str(home), "-s", "/bin/sh", name],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    entry = pwd.getpwnam(name)
    return User(name, entry.pw_uid, entry.pw_gid, home)


def _remove_user(user: User) -> None:
    for pid in processes_of(user.uid):  # what the tests' jobs and commands left behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    with contextlib.suppress(AssertionError):
        wait_until(lambda: not processes_of(user.uid), timeout=10, what="their processes")
    subprocess.run(["userdel", user.name], capture_output=True, timeout=30)


class UnixUsers:
    """Makes Unix users who can run this interpreter and ``procplan``; ``close()`` kills
    what they left running, removes them and puts back the directory modes it widened."""

    def __init__(self, homes: Path) -> None:
        self.homes = homes
        self.suffix = secrets.token_hex(3)  # runs on one machine do not collide
        self.made: list[User] = []
        self._widened: list[tuple[Path, int]] = []
        self._checked = False

    def make(self, *bases: str) -> tuple[User, ...]:
        """One user per base name, named ``BASE-SUFFIX``, home in ``homes``."""
        new = []
        for base in bases:
            user = _add_user(f"{base}-{self.suffix}", self.homes)
            self.made.append(user)
            new.append(user)
        if new and not self._checked:
            self._let_run(new[0])
            self._checked = True
        return tuple(new)

    def _let_run(self, user: User) -> None:
        probe = _can_run_procplan(user)
        if probe.returncode != 0:  # e.g. the interpreter under /root (0700)
            needed = [Path(os.path.realpath(PY)), Path(sys.prefix), Path(sys.base_prefix),
                      Path(procplan.__file__).parent,
                      *(Path(p) for p in sys.path if p and Path(p).exists())]  # fmt: skip
            for directory in _blocked_dirs(needed):
                mode = stat.S_IMODE(directory.stat().st_mode)
                self._widened.append((directory, mode))
                directory.chmod(mode | stat.S_IXOTH)
            probe = _can_run_procplan(user)
        if probe.returncode != 0:
            missing_dependency(f"a new Unix user cannot run {PY}: {probe.stderr.strip()[-500:]}")

    def close(self) -> None:
        for directory, mode in reversed(self._widened):
            directory.chmod(mode)
        self._widened.clear()
        for user in self.made:
            _remove_user(user)
        self.made.clear()


@contextlib.contextmanager
def user_homes(prefix: str) -> Iterator[Path]:
    """A fresh directory in /tmp every user may enter, removed afterwards."""
    made = Path(tempfile.mkdtemp(prefix=prefix))
    made.chmod(0o755)
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


@contextlib.contextmanager
def unix_users(homes: Path) -> Iterator[UnixUsers]:
    """A ``UnixUsers`` factory, closed on exit; skips (fails in CI) without root, ``useradd``,
    ``userdel`` or ``setpriv``."""
    if os.geteuid() != 0:
        missing_dependency("creating Unix users needs root")
    for tool in ("useradd", "userdel", "setpriv"):
        if shutil.which(tool) is None:
            missing_dependency(f"{tool} is not installed")
    factory = UnixUsers(homes)
    try:
        yield factory
    finally:
        factory.close()
