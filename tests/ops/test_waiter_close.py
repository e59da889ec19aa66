"""``JobWaiter.close`` (issue #16 item 8): a stopping server wakes every long poll, which
answers at once with what it has, and no later wait blocks."""

from __future__ import annotations

import asyncio
import threading
import time

from procplan.service.waiting import JobWaiter


def waiter() -> JobWaiter:
    def get_job(job_id: int) -> object:
        raise AssertionError("not used")

    return JobWaiter(get_job, lambda: 0, probe_s=0.01)  # type: ignore[arg-type]


def test_close_wakes_a_long_wait_and_later_waits_do_not_block() -> None:
    waiting = waiter()

    async def scenario() -> tuple[object, float, object, float]:
        started = time.monotonic()
        threading.Timer(0.2, waiting.close).start()  # from another thread, like the signal
        first = await waiting.wait_until(lambda: None, 30.0)
        woke = time.monotonic() - started
        started = time.monotonic()
        second = await waiting.wait_until(lambda: None, 30.0)
        return first, woke, second, time.monotonic() - started

    first, woke, second, later = asyncio.run(scenario())
    assert first is None and second is None  # the timeout answer
    assert 0.15 < woke < 2.0
    assert later < 0.5
    assert waiting.closed


def test_a_ready_answer_still_comes_after_close() -> None:
    waiting = waiter()
    waiting.close()
    assert asyncio.run(waiting.wait_until(lambda: "ready", 30.0)) == "ready"
