"""Worker processes for the multi-process booking races (SQLite file and PostgreSQL).

Kept apart from the test modules so that a spawned child imports only this (and procplan),
not pytest and the tests. Each worker opens its own engine on the shared database, waits on a
barrier before every round, and then tries one booking through ``BookingService``.
"""

from __future__ import annotations

import multiprocessing
import traceback
from dataclasses import dataclass
from typing import Any

from procplan.core.bookings import BookingLimits
from procplan.core.errors import DomainError
from procplan.core.model import BookingRequest
from procplan.service.bookings import BookingService
from procplan.store.engine import Store, make_engine
from procplan.testing import FakeClock

FIXED_NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC
HOUR = 3600


@dataclass(frozen=True)
class Round:
    """One simultaneous attempt: every worker asks for the same thing."""

    node_id: str
    start: int
    end: int
    gpu_ids: tuple[str, ...] | None = None
    gpu_count: int | None = None


def book_rounds(
    worker: int,
    db_url: str,
    rounds: list[Round],
    barrier: Any,
    results: Any,
) -> None:
    """Run every round; put ``(worker, [(round, outcome, booking_id, gpu_ids)])`` on results.

    ``outcome`` is ``"ok"`` or the refusal's error code; an unexpected exception is reported
    as ``"crash: ..."`` so that the parent test fails with the traceback instead of hanging.
    """
    out: list[tuple[int, str, int | None, tuple[str, ...]]] = []
    store = Store(make_engine(db_url, busy_timeout_ms=30_000, pool_size=2))
    try:
        service = BookingService(store, FakeClock(FIXED_NOW), BookingLimits())
        service.topology()  # connect before the first barrier: rounds start together
        for number, spec in enumerate(rounds):
            barrier.wait(timeout=60)
            req = BookingRequest(
                node_id=spec.node_id,
                start=spec.start,
                end=spec.end,
                user=f"worker-{worker}",
                label=f"W{worker}",
                gpu_ids=spec.gpu_ids,
                gpu_count=spec.gpu_count,
            )
            try:
                booking = service.create(req, whole_hours=True)
            except DomainError as exc:
                out.append((number, exc.code, None, ()))
            else:
                out.append((number, "ok", booking.id, tuple(booking.gpu_ids)))
    except Exception:  # report, never hang the parent
        out.append((-1, "crash: " + traceback.format_exc(), None, ()))
        barrier.abort()
    finally:
        store.dispose()
        results.put((worker, out))


def run_race(
    db_url: str, rounds: list[Round], workers: int = 4, timeout: float = 90.0
) -> dict[int, list[tuple[int, str, int | None, tuple[str, ...]]]]:
    """Start ``workers`` spawned processes on ``db_url`` and collect their outcomes per round."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=book_rounds, args=(k, db_url, rounds, barrier, results), daemon=True)
        for k in range(workers)
    ]
    for proc in procs:
        proc.start()
    collected: dict[int, list[tuple[int, str, int | None, tuple[str, ...]]]] = {}
    try:
        for _ in procs:
            worker, out = results.get(timeout=timeout)
            collected[worker] = out
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)
    per_round: dict[int, list[tuple[int, str, int | None, tuple[str, ...]]]] = {}
    for worker, out in collected.items():
        for number, outcome, booking_id, gpu_ids in out:
            assert not outcome.startswith("crash"), f"worker {worker}: {outcome}"
            per_round.setdefault(number, []).append((worker, outcome, booking_id, gpu_ids))
    return per_round
