"""Long-poll waits on a job: clients block on the server instead of polling every second.

A waiter sleeps until something in the job queue may have changed, then looks at its job. In
the process that runs the cycle (and in any process that wrote), ``notify()`` wakes waiters at
once; changes committed by *other* processes sharing the database are noticed by re-reading the
committed ``jobs_version`` every ``probe_s`` (one indexed read; no job rows unless it moved).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from procplan.core.jobs import Job

PROBE_S = 0.05
T = TypeVar("T")


class JobWaiter:
    """Wakes ``wait()`` callers (coroutines on any event loop) when jobs change."""

    def __init__(
        self,
        get_job: Callable[[int], Job],
        version: Callable[[], int],
        probe_s: float = PROBE_S,
    ) -> None:
        self._get_job = get_job
        self._version = version
        self._probe_s = probe_s
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self) -> None:
        """Something was committed: wake every waiter (safe from any thread)."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # a closed loop: its waiter is gone
                loop.call_soon_threadsafe(event.set)

    async def wait(self, job_id: int, seen_version: int | None, timeout_s: float) -> Job:
        """The job once its ``version`` exceeds ``seen_version`` (at once when that is
        ``None`` or the job is finished), else the job as it is after ``timeout_s``."""

        def changed() -> Job | None:
            job = self._get_job(job_id)
            if seen_version is None or job.version > seen_version or job.state.is_finished:
                return job
            return None

        found = await self.wait_until(changed, timeout_s)
        return found if found is not None else self._get_job(job_id)

    async def wait_until(self, ready: Callable[[], T | None], timeout_s: float) -> T | None:
        """``ready()``'s first non-``None`` answer, asked at once and again whenever the job
        queue changed; ``None`` after ``timeout_s`` without one."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:  # registered before reading: no notify can fall in between
            self._waiters.add(entry)
        try:
            seen = self._version()  # before asking: a commit in between is not missed
            found = ready()
            while found is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, self._probe_s))
                event.clear()
                current = self._version()
                if current != seen:
                    seen = current
                    found = ready()
            return found
        finally:
            with self._lock:
                self._waiters.discard(entry)
