"""Running the command of an interactive job on its GPUs (``procplan run``'s second half).

The command gets ``CUDA_VISIBLE_DEVICES`` and friends, stays in our process group (the
terminal's foreground group, so Ctrl-C and job control reach it directly, as if started without
``procplan``), and a watchdog thread heartbeats the job's lease while it runs. When the server
says the job must stop (preempted, cancelled, lost) the command gets SIGTERM, then SIGKILL after
the grace period. When it exits the job is released with its exit code, shell-style.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from types import FrameType

import typer

from procplan.client import ApiError, ClientError, Job, Lease, ProcPlanClient, ServerUnreachable
from procplan.present import MESSAGE_LIMIT, terminal_text
from procplan.present.jobs import node_text

DEFAULT_LEASE_TTL_S = 30.0
MAX_HEARTBEAT_S = 10.0
MIN_HEARTBEAT_S = 0.2
RETRY_HEARTBEAT_S = 1.0
"""After a failed heartbeat the next comes this soon (or at the interval, if shorter): with
two missed beats of a 10 s interval the lease would lapse, and another server of the list
usually answers within seconds (ADR 0021)."""
GRACE_S = 30.0  # SIGTERM, then SIGKILL after this (the server's preemption grace)
FORWARDED = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
GONE_STATUSES = (404, 409, 410)  # the server no longer runs the job: stop the command


def say(message: str) -> None:
    """Our own messages go to stderr, prefixed, so the command's output stays its own; they
    quote server text (reasons, messages), so the line is sanitised."""
    typer.echo(f"procplan: {terminal_text(message, MESSAGE_LIMIT)}", err=True)


def job_env(job: Job, base: Mapping[str, str]) -> dict[str, str]:
    """The command's environment: ``base`` plus the GPUs the job holds.

    No GPU means ``CUDA_VISIBLE_DEVICES=-1`` (CUDA then sees none); an empty value is
    rejected by some clients (COMPAT §2). Indices are PCI bus order, hence the device order.
    """
    indices = ",".join(str(i) for i in job.gpu_indices)
    return {
        **base,
        "CUDA_VISIBLE_DEVICES": indices or "-1",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "PROCPLAN_JOB_ID": job.id,
        "PROCPLAN_GPUS": ",".join(job.allocated_gpus),
        "PROCPLAN_NODES": node_text(job),
    }


def exit_status(returncode: int) -> int:
    """A shell's ``$?``: the exit code, or 128 + N for a death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def lease_ttl(job: Job) -> float:
    """The job's lease TTL in seconds, read from two server instants of the submitted job
    (``lease_expires_at`` − ``submitted_at``), so a skewed client clock does not matter;
    30 s when they are missing."""
    lease, submitted = job.lease_expires_at, job.submitted_at
    ttl = (lease - submitted).total_seconds() if lease and submitted else 0.0
    return ttl if ttl > 0 else DEFAULT_LEASE_TTL_S


def heartbeat_interval(job: Job) -> float:
    """A third of the lease TTL, capped at 10 s."""
    return min(max(lease_ttl(job) / 3, MIN_HEARTBEAT_S), MAX_HEARTBEAT_S)


def stop_reason(beat: Lease) -> str | None:
    """Why the command must stop, from a heartbeat answer; ``None`` while it may run."""
    if beat.preempt_at is not None:
        return f"the job is preempted (at {beat.preempt_at.isoformat()})"
    if beat.state is not None and beat.state != "running":
        return f"the job is {beat.state}"
    return None


class Watchdog:
    """Heartbeats the lease while the command runs; stops the command when the server says so.

    Stopping is SIGTERM, heartbeats continuing through the grace period (so the lease does not
    lapse while the command cleans up), then SIGKILL. ``finish`` is called once the command
    has exited and ends the thread at once.
    """

    def __init__(
        self,
        client: ProcPlanClient,
        ident: str,
        child: subprocess.Popen[bytes],
        interval: float,
        grace: float = GRACE_S,
    ) -> None:
        self._client, self._job_id, self._child = client, ident, child
        self._interval, self._grace = interval, grace
        self._done = threading.Event()
        self._warned = False
        self._failing = False  # the last heartbeat got no answer: the next comes sooner
        self._thread = threading.Thread(
            target=self._watch, name=f"procplan-heartbeat-{ident}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()

    def _watch(self) -> None:
        reason = None
        while reason is None:
            if self._done.wait(self._next_wait()):
                return
            reason = self._check()
        say(f"{reason}; sending SIGTERM to the command")
        self._child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        while (left := deadline - time.monotonic()) > 0:
            if self._done.wait(min(self._next_wait(), left)):
                return
            self._check()
        say(f"the command is still running after {self._grace:g} s; sending SIGKILL")
        self._child.kill()

    def _next_wait(self) -> float:
        return min(self._interval, RETRY_HEARTBEAT_S) if self._failing else self._interval

    def _check(self) -> str | None:
        """One heartbeat; unreachable servers and odd answers are retried, not fatal."""
        self._failing = False
        try:
            return stop_reason(self._client.jobs.heartbeat(self._job_id))
        except ApiError as exc:
            if exc.status in GONE_STATUSES:
                return f"the server no longer runs job {self._job_id} ({exc.message})"
            self._warn(f"heartbeat refused: {exc.message}")
        except ServerUnreachable as exc:
            self._failing = True
            self._warn(f"heartbeat failed: {exc.reason}")
        except ClientError as exc:
            self._warn(f"heartbeat failed: {exc}")
        return None

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            say(f"{message} (retrying)")


def _terminal_delivers_sigint() -> bool:
    """True when we are in the terminal's foreground group: then a Ctrl-C already reached
    the command (same group), and forwarding it would deliver it twice."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


SignalHandler = Callable[[int, FrameType | None], None]


@contextmanager
def handling(signals: Iterable[int], handler: SignalHandler) -> Iterator[None]:
    """``handler`` for ``signals`` inside the block; the previous handlers come back after."""
    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def forward_signals(child: subprocess.Popen[bytes]) -> AbstractContextManager[None]:
    """SIGTERM, SIGHUP and a SIGINT sent to us (not typed at the terminal) go to the command;
    we keep running to release the job once it has exited."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and _terminal_delivers_sigint():
            return
        child.send_signal(signum)

    return handling(FORWARDED, handler)


def release(client: ProcPlanClient, ident: str, code: int) -> None:
    """Report the exit code; failures only warn (the lease ends the job anyway)."""
    try:
        client.jobs.release(ident, code)
    except ApiError as exc:
        say(f"job {ident}: {exc.message}")
    except ClientError:
        say(f"could not release job {ident}; the server ends it when its lease lapses")


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it when ``procplan run`` dies.

    Without this a ``kill -9`` of the client would leave the command running on GPUs the
    server has already handed to someone else once the lease lapsed. Elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl: best effort
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(137)


def supervise(client: ProcPlanClient, job: Job, command: list[str], interval: float) -> int:
    """Run the command on the job's GPUs, heartbeating; release; return the shell exit code."""
    ident = job.id
    try:
        child = subprocess.Popen(command, env=job_env(job, os.environ), preexec_fn=die_with_parent)
    except OSError as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        say(f"cannot run {command[0]}: {exc.strerror or exc}")
        release(client, ident, code)
        return code
    watchdog = Watchdog(client, ident, child, interval)
    with forward_signals(child):
        watchdog.start()
        try:
            returncode = child.wait()
        finally:
            watchdog.finish()
    code = exit_status(returncode)
    release(client, ident, code)
    return code
