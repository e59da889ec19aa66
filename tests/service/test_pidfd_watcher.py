"""The pidfd watcher (``service.pidfd``, ADR 0016) over real child processes: an exit is
reported at once, pidfds are closed when forgotten, on exit and on close, and where pidfds do
not work the watcher says so and polling stays in charge."""

from __future__ import annotations

import errno
import os
import subprocess
import threading
from collections.abc import Callable, Iterator

import pytest

from procplan.service.pidfd import PidfdWatcher
from procplan.testing import wait_until

TIMEOUT = 10.0

pytestmark = pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfds here")


class Exits:
    """The watcher's ``on_exit``: counts calls and sets an event to wait on."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        self.event.set()


@pytest.fixture
def exits() -> Exits:
    return Exits()


@pytest.fixture
def watcher(exits: Exits) -> Iterator[PidfdWatcher]:
    built = PidfdWatcher(exits)
    yield built
    built.close()


@pytest.fixture
def spawn() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["sleep", "30"])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def yes() -> bool:
    return True


def is_pidfd(fd: int) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]"
    except OSError:
        return False


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The fds the watcher opens."""
    fds: list[int] = []
    real = os.pidfd_open

    def recording(pid: int, flags: int = 0) -> int:
        fd = real(pid, flags)
        fds.append(fd)
        return fd

    monkeypatch.setattr(os, "pidfd_open", recording)
    return fds


def test_an_exit_is_reported_at_once(
    watcher: PidfdWatcher, exits: Exits, spawn: Callable[[], subprocess.Popen[bytes]]
) -> None:
    first, second = spawn(), spawn()
    assert watcher.watch(1, first.pid, yes) and watcher.watch(2, second.pid, yes)
    assert watcher.watched() == 2 and not exits.event.is_set()
    first.kill()
    first.wait()
    assert exits.event.wait(TIMEOUT)
    assert watcher.take_exited() == {1}
    assert watcher.take_exited() == set()  # each exit is reported once
    assert watcher.watched() == 1 and 2 in watcher and 1 not in watcher


def test_an_unreaped_child_counts_as_exited(watcher: PidfdWatcher, exits: Exits) -> None:
    zombie = subprocess.Popen(["true"])
    try:
        assert watcher.watch(7, zombie.pid, yes)
        assert exits.event.wait(TIMEOUT)
        assert watcher.take_exited() == {7}
        assert zombie.returncode is None  # nobody reaped it: the exit itself was seen
    finally:
        zombie.wait()


def test_a_process_already_gone_is_reported(watcher: PidfdWatcher, exits: Exits) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert watcher.watch(3, gone.pid, yes)
    assert exits.event.is_set() and watcher.take_exited() == {3}
    assert watcher.watched() == 0


def test_watching_twice_opens_one_pidfd(
    watcher: PidfdWatcher, spawn: Callable[[], subprocess.Popen[bytes]], opened: list[int]
) -> None:
    proc = spawn()
    assert watcher.watch(1, proc.pid, yes) and watcher.watch(1, proc.pid, yes)
    assert len(opened) == 1 and watcher.watched() == 1


def test_not_the_client_any_more_is_left_to_polling(
    watcher: PidfdWatcher, spawn: Callable[[], subprocess.Popen[bytes]], opened: list[int]
) -> None:
    proc = spawn()
    assert not watcher.watch(1, proc.pid, lambda: False)
    assert watcher.watched() == 0 and not is_pidfd(opened[0])
    assert watcher.idle


def test_forget_and_exit_close_the_pidfds_and_the_thread_ends(
    watcher: PidfdWatcher,
    exits: Exits,
    spawn: Callable[[], subprocess.Popen[bytes]],
    opened: list[int],
) -> None:
    kept, dropped = spawn(), spawn()
    watcher.watch(1, kept.pid, yes)
    watcher.watch(2, dropped.pid, yes)
    assert all(is_pidfd(fd) for fd in opened) and not watcher.idle
    watcher.forget(2)
    assert not is_pidfd(opened[1]) and watcher.watched() == 1
    kept.kill()
    kept.wait()
    assert exits.event.wait(TIMEOUT)
    assert not is_pidfd(opened[0])
    wait_until(lambda: watcher.idle, TIMEOUT, what="the watcher's thread to end")
    assert exits.calls == 1  # the forgotten one never reports


def test_close_joins_the_thread_and_closes_every_pidfd(
    watcher: PidfdWatcher,
    exits: Exits,
    spawn: Callable[[], subprocess.Popen[bytes]],
    opened: list[int],
) -> None:
    for key in range(3):
        watcher.watch(key, spawn().pid, yes)
    assert not watcher.idle
    watcher.close()
    assert watcher.idle and watcher.watched() == 0
    assert not any(is_pidfd(fd) for fd in opened)
    assert not watcher.watch(9, spawn().pid, yes)  # closed: nothing more is watched
    assert exits.calls == 0


def test_retain_drops_jobs_that_ended_elsewhere_but_not_newer_ones(
    watcher: PidfdWatcher, spawn: Callable[[], subprocess.Popen[bytes]]
) -> None:
    watcher.watch(1, spawn().pid, yes)
    watcher.watch(2, spawn().pid, yes)
    mark = watcher.mark()
    watcher.watch(3, spawn().pid, yes)  # registered after the housekeeper read its jobs
    watcher.retain({1}, mark)
    assert 1 in watcher and 2 not in watcher and 3 in watcher


def test_without_pidfd_open_nothing_is_watched(
    monkeypatch: pytest.MonkeyPatch, exits: Exits, spawn: Callable[[], subprocess.Popen[bytes]]
) -> None:
    monkeypatch.delattr(os, "pidfd_open")
    watcher = PidfdWatcher(exits)
    assert not watcher.available
    assert not watcher.watch(1, spawn().pid, yes)
    assert watcher.idle


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EPERM])
def test_pidfds_refused_by_the_kernel_turn_the_watcher_off(
    monkeypatch: pytest.MonkeyPatch,
    watcher: PidfdWatcher,
    spawn: Callable[[], subprocess.Popen[bytes]],
    code: int,
) -> None:
    def refuse(pid: int, flags: int = 0) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "pidfd_open", refuse)
    assert not watcher.watch(1, spawn().pid, yes)
    assert not watcher.available and watcher.idle


def test_a_transient_failure_leaves_that_job_to_polling_only(
    monkeypatch: pytest.MonkeyPatch,
    watcher: PidfdWatcher,
    spawn: Callable[[], subprocess.Popen[bytes]],
) -> None:
    real = os.pidfd_open
    failures = [OSError(errno.EMFILE, "Too many open files")]

    def flaky(pid: int, flags: int = 0) -> int:
        if failures:
            raise failures.pop()
        return real(pid, flags)

    monkeypatch.setattr(os, "pidfd_open", flaky)
    proc = spawn()
    assert not watcher.watch(1, proc.pid, yes)
    assert watcher.available
    assert watcher.watch(1, proc.pid, yes)  # the housekeeper's next try
