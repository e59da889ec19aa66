"""Instant notice of a watched client's exit, through pidfds (Linux ≥ 5.3; ADR 0016).

A pidfd (``os.pidfd_open``) becomes readable when its process exits. One daemon thread
blocks in ``select.poll`` on every watched job's pidfd, plus a self-pipe (the set changed,
or stop); on an exit it closes that pidfd, notes the job as exited and calls ``on_exit``
(the housekeeper's wake-up of the cycle, which ends the job and hands its GPUs over). The
thread runs only while something is watched: an idle server holds no thread and no fd.

A pidfd names one process for good; the caller's ``same_process`` check, made once it is
open, ties it to the job's client (a PID may be reused before it is opened). Where pidfds do
not work (old kernel, seccomp: ENOSYS, EPERM, ...) the watcher turns itself off and the
housekeeper's polling alone remains; a transient failure (no free fd) leaves that one job to
polling until the housekeeper tries again.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
from collections.abc import Callable, Collection

LOG = logging.getLogger("procplan.pidfd")

# Errors that say pidfds do not work here at all (not just for this PID): stop trying.
UNSUPPORTED = frozenset({errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.EACCES})


class PidfdWatcher:
    """One pidfd per watched key (a job id); ``on_exit()`` when any of their processes exit."""

    def __init__(self, on_exit: Callable[[], object]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._fds: dict[int, int] = {}  # key -> pidfd
        self._born: dict[int, int] = {}  # key -> registration number (``retain``)
        self._registered = 0
        self._exited: set[int] = set()
        self._thread: threading.Thread | None = None
        self._pipe: tuple[int, int] | None = None
        self._stopping = False
        self.available = hasattr(os, "pidfd_open")

    def __contains__(self, key: int) -> bool:
        with self._lock:
            return key in self._fds

    def watch(self, key: int, pid: int, same_process: Callable[[], bool]) -> bool:
        """Watch ``pid`` as ``key``'s client. ``same_process()`` is asked once the pidfd is
        open: false (not the client any more) drops it. True when an exit will be reported
        (already watched, or the process is gone); false leaves ``key`` to polling."""
        if not self.available or self._stopping:
            return False
        if key in self:
            return True
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:  # gone already: report it like any other exit
            self._report([key])
            return True
        except OSError as exc:
            self._failed(pid, exc)
            return False
        if not same_process():
            os.close(fd)
            return False
        with self._lock:
            if self._stopping or key in self._fds:
                os.close(fd)
                return not self._stopping
            self._registered += 1
            self._fds[key], self._born[key] = fd, self._registered
            self._ensure_thread()
        self._poke()
        return True

    def take_exited(self) -> set[int]:
        """The keys whose process exited since the last call (each reported once)."""
        with self._lock:
            exited, self._exited = self._exited, set()
            return exited

    def forget(self, key: int) -> None:
        """Stop watching ``key`` (its job ended) and close its pidfd."""
        with self._lock:
            fd = self._fds.pop(key, None)
            self._born.pop(key, None)
            self._exited.discard(key)
        if fd is not None:
            os.close(fd)
            self._poke()

    def mark(self) -> int:
        """A registration mark for ``retain``: take it before reading the watched jobs."""
        with self._lock:
            return self._registered

    def retain(self, keys: Collection[int], mark: int) -> None:
        """Forget every key not in ``keys`` that was registered before ``mark`` (jobs that
        ended without the housekeeper: released, cancelled, preempted elsewhere)."""
        with self._lock:
            stale = [k for k, born in self._born.items() if born <= mark and k not in keys]
        for key in stale:
            self.forget(key)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (joined) and close every fd; the watcher watches nothing after."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._poke()
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            fds, self._fds = list(self._fds.values()), {}
            self._born.clear()
        for fd in fds:
            os.close(fd)

    def watched(self) -> int:
        """How many pidfds are open."""
        with self._lock:
            return len(self._fds)

    @property
    def idle(self) -> bool:
        """No thread runs and no fd is open."""
        with self._lock:
            return self._thread is None and self._pipe is None and not self._fds

    # ---- the thread -------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        """Start the thread if none runs (called with the lock held)."""
        if self._thread is not None:
            return
        self._pipe = os.pipe()
        os.set_blocking(self._pipe[1], False)
        self._thread = threading.Thread(target=self._loop, name="procplan-pidfd", daemon=True)
        self._thread.start()

    def _poke(self) -> None:
        """Wake the thread: the set of fds changed, or it should stop."""
        with self._lock:
            pipe = self._pipe
            if pipe is None:
                return
            with contextlib.suppress(BlockingIOError):  # a full pipe wakes it just as well
                os.write(pipe[1], b"x")

    def _loop(self) -> None:
        while True:
            with self._lock:
                assert self._pipe is not None
                wake_fd = self._pipe[0]
                if self._stopping or not self._fds:  # leave: close the self-pipe
                    for fd in self._pipe:
                        os.close(fd)
                    self._pipe = self._thread = None
                    return
                poller = select.poll()
                poller.register(wake_fd, select.POLLIN)
                keys = {fd: key for key, fd in self._fds.items()}
                for fd in keys:
                    poller.register(fd, select.POLLIN)
            ready = [fd for fd, _ in poller.poll()]
            if wake_fd in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_fd, 4096)
            self._exits([(keys[fd], fd) for fd in ready if fd in keys])

    def _exits(self, ready: list[tuple[int, int]]) -> None:
        """Close and report these exits, unless forgotten meanwhile (fd numbers get reused)."""
        ended = []
        with self._lock:
            for key, fd in ready:
                if self._fds.get(key) == fd:
                    del self._fds[key], self._born[key]
                    os.close(fd)
                    ended.append(key)
        self._report(ended)

    def _report(self, keys: list[int]) -> None:
        if not keys:
            return
        with self._lock:
            self._exited.update(keys)
        try:
            self._on_exit()
        except Exception:  # the housekeeper's next poll still ends the job
            LOG.exception("pidfd exit callback failed")

    def _failed(self, pid: int, exc: OSError) -> None:
        if exc.errno in UNSUPPORTED:
            self.available = False
            LOG.warning("pidfds unavailable (%s): client PIDs are polled instead", exc)
        else:
            LOG.info("could not open a pidfd on pid %s (%s): polling it instead", pid, exc)
