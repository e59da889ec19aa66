"""Long-poll waits: clients (and agents) block on the server instead of polling every second.

A waiter sleeps until something in the job queue may have changed, then looks again. In the
process that runs the cycle (and in any process that wrote), ``notify()`` wakes waiters at
once: the waiter subscribes to the event bus (``WAKES_WAITERS``: job and tenant writes, and the
cycle's ``PLAN_APPLIED``). Changes committed by *other* processes sharing the database are
noticed by one prober
thread per process, which re-reads the committed ``jobs_version`` every ``probe_s`` while
anyone waits (one indexed read, however many waiters: 300 agents' long polls must not mean
6,000 reads a second) and wakes everyone when it moved.

``close()`` (the server is stopping) wakes every waiter for good: each wait answers at once
with what it has (its timeout answer), so a shutdown never waits for a long poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from procplan.core.jobs import Job
from procplan.service.events import Event, EventBus

PROBE_S = 0.05
T = TypeVar("T")
WAKES_WAITERS = frozenset({Event.JOBS_CHANGED, Event.TENANTS_CHANGED, Event.PLAN_APPLIED})


class JobWaiter:
    """Wakes ``wait()`` callers (coroutines on any event loop) when jobs change; with
    ``events``, on every ``WAKES_WAITERS`` event published there."""

    def __init__(
        self,
        get_job: Callable[[int], Job],
        version: Callable[[], int],
        probe_s: float = PROBE_S,
        events: EventBus | None = None,
    ) -> None:
        self._get_job = get_job
        self._version = version
        self._probe_s = probe_s
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._prober: threading.Thread | None = None
        self.generation = 0  # counts ``notify()`` calls: answers computed before one are stale
        self.closed = False  # ``close()``d: waits answer at once
        if events is not None:
            events.subscribe(WAKES_WAITERS, self.notify)

    def notify(self, event: Event | None = None) -> None:
        """Something was committed: wake every waiter (safe from any thread)."""
        with self._lock:
            self.generation += 1
            waiters = list(self._waiters)
        for loop, woken in waiters:
            with contextlib.suppress(RuntimeError):  # a closed loop: its waiter is gone
                loop.call_soon_threadsafe(woken.set)

    def close(self) -> None:
        """The server is stopping: wake every waiter, and let no wait block from now on
        (safe from any thread, a signal handler included)."""
        self.closed = True
        self.notify()

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
        queue may have changed; ``None`` after ``timeout_s`` without one, or at once once
        the waiter is ``closed``."""
        deadline = time.monotonic() + max(timeout_s, 0.0)
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:  # registered before asking: no notify can fall in between
            self._waiters.add(entry)
            self._ensure_prober()
        try:
            found = ready()
            while found is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
                event.clear()
                found = ready()
            return found
        finally:
            with self._lock:
                self._waiters.discard(entry)

    def _ensure_prober(self) -> None:
        """Start the prober thread if none runs (called with the lock held)."""
        if self._prober is None or not self._prober.is_alive():
            # Read before the caller's first look, so no commit falls in between unseen.
            seen = self._version()
            self._prober = threading.Thread(
                target=self._probe, args=(seen,), name="procplan-wait-probe", daemon=True
            )
            self._prober.start()

    def _probe(self, seen: int) -> None:
        """While anyone waits, wake everyone when the committed version moves."""
        idle_since: float | None = None
        while True:
            time.sleep(self._probe_s)
            with self._lock:
                if not self._waiters:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 1.0:
                        self._prober = None
                        return
                    continue
                idle_since = None
            try:
                current = self._version()
            except Exception:  # the database is briefly unavailable: try again next probe
                continue
            if current != seen:
                seen = current
                self.notify()
