"""Group commit: ledger writes from many request threads share one transaction.

Every booking write must hold the database's write lock from its first read (check-then-write),
so writes are serial whatever we do. Under load most of each write's time went to what
surrounds it — taking the locks, BEGIN IMMEDIATE, COMMIT and its fsync, and waking the next
writer — not to the statements themselves. Here one writer thread per process takes whatever
writes are waiting, runs each in its own SAVEPOINT inside one transaction (a refused or failing
write is rolled back alone and reports its own error), commits once, and only then answers
every caller: acknowledged still means durable, and each write still sees the ones before it.

A caller waits in its own thread (``run``) or, on an event loop, awaits the future ``submit``
returns (``asyncio.wrap_future``): a request answered by a write then costs no thread-pool
hop (issue #18).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from sqlalchemy import Connection

from procplan.core.errors import DomainError
from procplan.store.engine import Store

T = TypeVar("T")

MAX_BATCH = 64
# An idle writer thread exits after this long and is restarted on the next write, so stores
# that are no longer used (tests, short-lived tools) leave no thread behind for long.
IDLE_EXIT_S = 5.0


class _Job(Generic[T]):
    __slots__ = ("future", "work")

    def __init__(self, work: Callable[[Connection], T]) -> None:
        self.work = work
        self.future: Future[T] = Future()


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
        return self.submit(work).result()

    def submit(self, work: Callable[[Connection], T]) -> Future[T]:
        """Queue ``work``; the future is resolved once its transaction committed (or with the
        error of ``work`` or of the commit)."""
        job = _Job(work)
        self._queue.put(job)  # type: ignore[arg-type]
        self._ensure_worker()
        return job.future

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
            del first, batch  # idle, the writer holds no caller's future (nor its outcome)

    def _commit(self, batch: list[_Job[object]]) -> None:
        outcomes: list[tuple[object, BaseException | None]] = []
        try:
            alone = len(batch) == 1
            outcomes = [self._run_alone(batch[0])] if alone else self._run_together(batch)
        finally:
            for job, (result, error) in zip(batch, outcomes or _lost(batch), strict=True):
                if error is not None:
                    job.future.set_exception(error)
                else:
                    job.future.set_result(result)

    def _run_alone(self, job: _Job[object]) -> tuple[object, BaseException | None]:
        """One waiting write: no savepoint needed, its error rolls back the transaction."""
        try:
            with self._store.write() as conn:
                result = job.work(conn)
        except BaseException as exc:
            return None, _outcome(exc)
        return result, None

    def _run_together(self, batch: list[_Job[object]]) -> list[tuple[object, BaseException | None]]:
        outcomes: list[tuple[object, BaseException | None]] = []
        try:
            with self._store.write() as conn:
                for job in batch:
                    try:
                        with conn.begin_nested():
                            outcomes.append((job.work(conn), None))
                    except Exception as exc:
                        outcomes.append((None, _outcome(exc)))
        except BaseException as exc:  # the transaction itself failed: nobody was written
            failed = _outcome(exc)
            return [(None, error or failed) for _, error in _padded(outcomes, len(batch))]
        return outcomes


def _outcome(exc: BaseException) -> BaseException:
    """``exc`` as a write's outcome: a refusal (``DomainError``, an answer, not a fault)
    without its traceback. Its frames lead back (``f_back``) to the writer's, which holds the
    batch, whose futures hold ``exc``: a reference cycle that only the garbage collector
    would free, with each refused request's whole state behind it (issue #18: ~50,000
    objects a collection, a 40 ms pause every second or two under the write mix). The
    caller re-raises it with its own traceback. Faults keep theirs, for the log."""
    return exc.with_traceback(None) if isinstance(exc, DomainError) else exc


def _padded(
    outcomes: list[tuple[object, BaseException | None]], size: int
) -> list[tuple[object, BaseException | None]]:
    return outcomes + [(None, None)] * (size - len(outcomes))


def _lost(batch: list[_Job[object]]) -> list[tuple[object, BaseException | None]]:
    """What the callers get when the writer itself failed before reporting (a bug)."""
    return [(None, RuntimeError("the write was lost: the writer failed"))] * len(batch)
