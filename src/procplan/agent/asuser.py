"""Checking and opening a job's files with the job user's rights, never the agent's.

A root agent that opened ``stdout_path`` itself would let any user create or append to files
in directories only root may write (``/etc``, ``/root``): the path comes from the job. So
what the job names is touched by a short-lived child of the agent that first becomes the job
user — supplementary groups, then gid, then uid, the order that leaves no way back — enters
the working directory, opens the log files and hands the descriptors back over a socket
pair (``SCM_RIGHTS``). What the user could not open themselves fails the launch with the
reason. The job itself is then started with these descriptors as its stdout and stderr.

The child is an ``os.fork`` of the agent, not a new interpreter: it only makes system calls
and ends with ``os._exit``, so no lock another thread held at the fork is ever needed. The
agent waits for its answer a bounded time (a hung network file system must not freeze the
agent) and reaps it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import stat
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

HELPER_TIMEOUT_S = 10.0
_REAP_S = 1.0
_ANSWER_BYTES = 65536
_OK, _FAILED = b"+", b"-"


class LaunchError(Exception):
    """The job cannot start here; the message says why (reported as ``launch_failed``)."""


@dataclass(frozen=True, slots=True)
class Account:
    """The Unix identity a job runs as: what ``setgroups``/``setgid``/``setuid`` receive."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @classmethod
    def of(cls, entry: pwd.struct_passwd) -> Account:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


def open_log(path: str, what: str, owner: Account | None = None, truncate: bool = True) -> int:
    """Open a log file for appending (emptied first when ``truncate``: a job's first run;
    a requeued run appends), in this process. Never follows a symlink,
    never blocks on a FIFO (``O_NONBLOCK``, cleared once the file is known to be regular);
    with ``owner`` (the process already runs as that account) refuses an existing file that
    belongs to someone else, so a group- or world-writable file of another user is not
    taken over. ``what`` (``stdout``/``stderr``) names the file in the error."""
    as_whom = "" if owner is None else f" as {owner.name}"
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            created = True
        except FileExistsError:
            fd = os.open(path, flags)
            created = False
    except OSError as exc:
        raise LaunchError(f"cannot open {what} {path}{as_whom}: {exc.strerror or exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LaunchError(f"{what} {path} is not a regular file")
        if owner is not None and not created and info.st_uid != owner.uid:
            raise LaunchError(f"{what} {path} exists and belongs to another user")
        os.set_blocking(fd, True)
        if truncate:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_logs_as(
    account: Account,
    workdir: str,
    files: Sequence[tuple[str, str]],
    timeout_s: float = HELPER_TIMEOUT_S,
    truncate: bool = True,
) -> list[int]:
    """As ``account``: check that ``workdir`` can be entered, then open each ``(what, path)``
    of ``files`` with ``open_log`` (``truncate`` as there); returns the descriptors in order
    (the caller closes them). ``LaunchError`` says what the account may not do."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        pid = os.fork()
    except OSError as exc:
        ours.close()
        theirs.close()
        raise LaunchError(f"cannot start a helper process: {exc.strerror or exc}") from exc
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        _helper(ours, theirs, account, workdir, files, truncate)
    theirs.close()
    try:
        answer, fds = _receive(ours, pid, account, len(files), timeout_s)
    finally:
        ours.close()
        _reap(pid)
    if answer[:1] == _OK and len(fds) == len(files):
        return fds
    for fd in fds:
        os.close(fd)
    if answer[:1] == _FAILED:
        raise LaunchError(answer[1:].decode("utf-8", "replace"))
    raise LaunchError(f"the helper that opens files as {account.name} ended without an answer")


def _receive(
    sock: socket.socket, pid: int, account: Account, count: int, timeout_s: float
) -> tuple[bytes, list[int]]:
    sock.settimeout(timeout_s)
    flags = getattr(socket, "MSG_CMSG_CLOEXEC", 0)
    try:
        answer, fds, _flags, _address = socket.recv_fds(sock, _ANSWER_BYTES, count, flags)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        raise LaunchError(
            f"opening the job's files as {account.name} took longer than {timeout_s:g} s"
        ) from None
    except OSError as exc:
        raise LaunchError(f"no answer from the helper process: {exc.strerror or exc}") from exc
    return answer, list(fds)


def _reap(pid: int) -> None:
    """Wait for the helper briefly; one stuck in the kernel is killed and reaped by a thread
    so that it does not linger as a zombie."""
    deadline = time.monotonic() + _REAP_S
    while True:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.001)
    if done:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)

    def wait() -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    threading.Thread(target=wait, name=f"procplan-reap-{pid}", daemon=True).start()


def _helper(  # pragma: no cover - runs in the forked child
    ours: socket.socket,
    sock: socket.socket,
    account: Account,
    workdir: str,
    files: Sequence[tuple[str, str]],
    truncate: bool = True,
) -> None:
    """The forked child: become ``account``, check, open, answer, exit. Never returns."""
    code = 1
    try:
        ours.close()
        fds: list[int] = []
        try:
            os.setgroups(list(account.groups))
            os.setgid(account.gid)
            os.setuid(account.uid)
        except OSError as exc:
            raise LaunchError(f"cannot switch to {account.name}: {exc.strerror or exc}") from exc
        try:
            os.chdir(workdir)
        except (FileNotFoundError, NotADirectoryError):
            raise LaunchError(f"working directory {workdir} does not exist on this node") from None
        except OSError as exc:
            raise LaunchError(
                f"cannot enter working directory {workdir} as {account.name}: {exc.strerror or exc}"
            ) from exc
        for what, path in files:
            fds.append(open_log(path, what, account, truncate))
        socket.send_fds(sock, [_OK], fds)
        code = 0
    except LaunchError as exc:
        with contextlib.suppress(OSError):
            sock.send(_FAILED + str(exc).encode("utf-8", "replace")[: _ANSWER_BYTES - 1])
    finally:  # whatever happened, the child ends here: it never returns into the agent
        os._exit(code)
