"""Group commit: ledger writes from many request threads share one transaction.

Every booking write must hold the database's write lock from its first read (check-then-write),
so writes are serial whatever we do. Under load most of each write's time went to what
surrounds it — taking the locks, BEGIN IMMEDIATE, COMMIT and its fsync, and waking the next
writer — not to the statements themselves. Here one writer thread per process takes whatever
writes are waiting, runs each in its own SAVEPOINT inside one transaction (a refused or failing
write is rolled back alone and reports its own error), commits once, and only then answers
every caller: acknowledged still means durable, and each write still sees the ones before it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy import Connection

from procplan.store.engine import Store

T = TypeVar("T")

MAX_BATCH = 64
# An idle writer thread exits after this long and is restarted on the next write, so stores
# that are no longer used (tests, short-lived tools) leave no thread behind for long.
IDLE_EXIT_S = 5.0


class _Job(Generic[T]):
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work: Callable[[Connection], T]) -> None:
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class WriteBatcher:
    """Runs ``work(conn)`` callables in shared write transactions; see the module doc."""

    def __init__(self, store: Store, max_batch: int = MAX_BATCH) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job[object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a write transaction; return its result once committed.

        Exceptions raised by ``work`` (its savepoint is rolled back) or by the commit are
        re-raised here, in the caller's thread.
        """
        job = _Job(work)
        self._queue.put(job)  # type: ignore[arg-type]
        self._ensure_worker()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="procplan-writer", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Job[object]]) -> None:
        try:
            if len(batch) == 1:
                self._run_alone(batch[0])
            else:
                self._run_together(batch)
        finally:
            for job in batch:
                job.done.set()

    def _run_alone(self, job: _Job[object]) -> None:
        """One waiting write: no savepoint needed, its error rolls back the transaction."""
        try:
            with self._store.write() as conn:
                job.result = job.work(conn)
        except BaseException as exc:
            job.error, job.result = exc, None

    def _run_together(self, batch: list[_Job[object]]) -> None:
        try:
            with self._store.write() as conn:
                for job in batch:
                    try:
                        with conn.begin_nested():
                            job.result = job.work(conn)
                    except Exception as exc:
                        job.error, job.result = exc, None
        except BaseException as exc:  # the transaction itself failed: nobody was written
            for job in batch:
                if job.error is None:
                    job.error, job.result = exc, None
