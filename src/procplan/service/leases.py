"""Liveness of running work: leases, watched client PIDs, and preemption deadlines.

Each cycle the housekeeper ends what is no longer alive before the planner looks:

- an interactive job whose lease lapsed (its client stopped heartbeating) becomes ``lost``
  when running, ``cancelled`` while still pending; its claims are freed;
- a job whose client runs on this host (``srun``'s ``/acquire``, ``procplan run`` here) is
  also watched by PID, so a dead client is noticed within ``pid_check_s`` instead of the TTL.
  The process start time is remembered, so a PID reused by another process is not mistaken
  for the client; a PID owned by another user counts as alive (COMPAT §2). Where the kernel
  has pidfds, the process's exit is also seen at once (``service.pidfd``, ADR 0016): the
  watcher wakes the cycle, whose housekeeping ends the job and hands its GPUs over at once;
- a preempted job still running after the grace period is ended (``preempted``; batch jobs go
  back to the queue), after a SIGKILL to its watched PID.

A PID is what a client said; the server may run as root. So a signal goes only to a process
whose real uid is the job's (``extra["pid_uid"]``, recorded at submission, else the uid of
the job's user name here), never to the server itself, its parent, or init: a job must not be
a way to kill someone else's process.
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import time
from collections.abc import Callable, Sequence

import psutil

from procplan.core.errors import DomainError
from procplan.core.jobs import Job, JobKind, JobState
from procplan.service.clock import Clock
from procplan.service.jobs import JobService
from procplan.service.pidfd import PidfdWatcher
from procplan.service.processes import process_owner_uid

LOG = logging.getLogger("procplan.leases")

SRUN_CLIENT = "srun"  # JobRequest.extra["client"] of jobs created by POST /acquire


class PidWatch:
    """Is a client process alive? Remembers each job's process start time."""

    def __init__(self) -> None:
        self._started: dict[int, float] = {}

    def alive(self, job: Job) -> bool:
        if job.pid is None:
            return True
        try:
            created = float(psutil.Process(job.pid).create_time())
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True  # exists, owned by someone else: alive by COMPAT §2
        first = self._started.setdefault(job.id, created)
        return abs(first - created) < 0.5

    def signal(self, job: Job, signum: int) -> None:
        """Send ``signum`` to the job's watched client, if it is still that process and it
        belongs to the job's uid (see the module docstring); otherwise log and do nothing."""
        if job.pid is None or not self.alive(job):
            return
        if job.pid <= 1 or job.pid in (os.getpid(), os.getppid()):
            LOG.warning("job %s: refusing to signal pid %s (this server, its parent or init)",
                        job.id, job.pid)  # fmt: skip
            return
        expected = expected_uid(job)
        owner = process_owner_uid(job.pid)
        if expected is None or owner != expected:
            LOG.warning(
                "job %s: not signalling pid %s: it belongs to uid %s, the job's uid is %s",
                job.id, job.pid, owner, "unknown" if expected is None else expected,
            )  # fmt: skip
            return
        try:
            os.kill(job.pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            LOG.warning("job %s: not allowed to signal pid %s", job.id, job.pid)

    def forget(self, job_id: int) -> None:
        self._started.pop(job_id, None)


def expected_uid(job: Job) -> int | None:
    """The uid the job's client process must run as: ``extra["pid_uid"]`` when the server
    recorded it at submission, else the uid of the job's user name on this host; ``None``
    when neither is known (then nothing is signalled)."""
    recorded = job.extra.get("pid_uid")
    if isinstance(recorded, int) and not isinstance(recorded, bool):
        return recorded
    if isinstance(recorded, str) and recorded.isdigit():
        return int(recorded)
    name = job.user
    if name.startswith("uid:") and name[4:].isdigit():  # what /acquire names a nameless uid
        return int(name[4:])
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


class Housekeeper:
    """Ends lapsed, dead and overdue jobs; see the module docstring.

    ``pidfd``: also watch client PIDs through pidfds (``Settings.pid_watch``); ``wake``: what
    a watched client's exit calls (``compose`` sets the scheduler's ``wake_housekeeping``);
    ``leading``: whether this process runs the cycle (only then are pidfds opened at
    submission: another process's housekeeping would never end the job)."""

    def __init__(
        self,
        jobs: JobService,
        clock: Clock,
        pid_check_s: float = 1.0,
        *,
        pidfd: bool = True,
        leading: Callable[[], bool] = lambda: True,
    ) -> None:
        self.jobs = jobs
        self.clock = clock
        self.pids = PidWatch()
        self.pid_check_s = pid_check_s
        self._next_pid_check = 0.0
        self.wake: Callable[[], object] = lambda: None
        self._leading = leading
        self.exits = PidfdWatcher(self._exited) if pidfd else None

    def run(self) -> None:
        now = self.clock.now()
        self._lapse_leases(now)
        exited = self.exits.take_exited() if self.exits is not None else set()
        if exited or time.monotonic() >= self._next_pid_check:
            self._check_pids(exited)
            self._next_pid_check = time.monotonic() + self.pid_check_s
        self._end_overdue_preemptions(now)

    def watch(self, job: Job) -> None:
        """Watch a new job's client through a pidfd from now on (``JobService.submit``
        calls it after the commit; polling covers whatever this does not)."""
        if self._watched_here(job) and self._leading():
            try:
                self._open_pidfd(job)
            except Exception:  # the job is committed: polling still watches it
                LOG.exception("job %s: could not watch pid %s", job.id, job.pid)

    def _open_pidfd(self, job: Job) -> None:
        """A pidfd on the job's client, kept once the process is known to be the client
        (its start time is the one first seen: ``PidWatch``)."""
        if self.exits is not None and job.pid is not None:
            self.exits.watch(job.id, job.pid, lambda: self.pids.alive(job))

    def close(self) -> None:
        """Stop the pidfd watcher's thread and close its fds (the server stops)."""
        if self.exits is not None:
            self.exits.close()

    def _exited(self) -> None:
        self.wake()

    def _watched_here(self, job: Job) -> bool:
        return job.pid is not None and job.host == self.jobs.settings.local_host

    def _lapse_leases(self, now: int) -> None:
        for job in self.jobs.expired_leases(now):
            if self._watched_here(job) and self.pids.alive(job):
                self.jobs.heartbeat(job.id)  # the PID is the lease of a watched client
                continue
            self._end(job, "lease expired: the client stopped sending heartbeats")

    def _check_pids(self, exited: set[int]) -> None:
        """End the jobs whose client is gone: ``exited`` (their pidfd said so) or found
        dead by polling. The others get a pidfd when they have none yet (jobs submitted
        before a restart or in another process), and pidfds of jobs that ended some other
        way are closed."""
        mark = self.exits.mark() if self.exits is not None else 0
        watched = self.jobs.watched_here()
        for job in watched:
            if job.id in exited or not self.pids.alive(job):
                self._end(job, f"client process {job.pid} exited")
            else:
                self._open_pidfd(job)
        if self.exits is not None:
            self.exits.retain({job.id for job in watched}, mark)

    def _end(self, job: Job, why: str) -> None:
        if job.state is JobState.PENDING:
            self._finish(job, JobState.CANCELLED, f"{why} before GPUs were free")
        elif job.extra.get("client") == SRUN_CLIENT and "exited" in why:
            self._finish(job, JobState.COMPLETED, why)  # srun execs: its PID ending is the end
        else:
            self._finish(job, JobState.LOST, why)
        self._forget(job.id)

    def _forget(self, job_id: int) -> None:
        self.pids.forget(job_id)
        if self.exits is not None:
            self.exits.forget(job_id)

    def _end_overdue_preemptions(self, now: int) -> None:
        for job in self.jobs.overdue_preemptions(now):
            if self._watched_here(job):
                self.pids.signal(job, signal.SIGKILL)
            ended = self._finish(job, JobState.PREEMPTED, job.message or "preempted")
            if ended is not None and ended.kind is JobKind.BATCH:
                self.jobs.requeue(job.id)
            self._forget(job.id)

    def signal_preempted(self, jobs: Sequence[Job]) -> None:
        """The cycle just decided these preemptions: SIGTERM the watched clients now (other
        clients learn it from their heartbeat, batch jobs from their node agent)."""
        for job in jobs:
            if self._watched_here(job):
                self.pids.signal(job, signal.SIGTERM)

    def _finish(self, job: Job, state: JobState, message: str) -> Job | None:
        try:
            return self.jobs.finish(job.id, state, message=message)
        except DomainError as exc:  # it ended meanwhile (released, cancelled): nothing to do
            LOG.debug("job %s: could not mark %s: %s", job.id, state.value, exc)
            return None
