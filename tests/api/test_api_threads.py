"""``procplan.api.threads.run_in_threadpool``: Starlette's, minus a reference cycle per error."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest

from procplan.api.threads import run_in_threadpool
from procplan.core.errors import Conflict


def on_worker(a: int, *, b: int) -> tuple[int, str]:
    return a + b, threading.current_thread().name


def refuse(message: str) -> None:
    raise Conflict(message)


def test_the_result_comes_back_from_a_worker_thread() -> None:
    total, thread = asyncio.run(run_in_threadpool(on_worker, 2, b=3))
    assert total == 5
    assert thread != threading.current_thread().name


def test_the_workers_exception_is_raised_in_the_caller_and_freed_without_the_collector() -> None:
    raised: list[weakref.ref[BaseException]] = []

    async def refused() -> str:
        try:
            await run_in_threadpool(refuse, "taken")
        except Conflict as exc:
            assert "refuse" in [tb.tb_frame.f_code.co_name for tb in walk(exc.__traceback__)]
            raised.append(weakref.ref(exc))
            return exc.message
        return "not raised"

    async def scenario() -> list[str]:
        return [await refused() for _ in range(3)]

    gc.collect()
    gc.disable()
    try:
        assert asyncio.run(scenario()) == ["taken"] * 3
        assert [ref() for ref in raised] == [None] * 3  # freed as the caller let go
    finally:
        gc.enable()


def test_base_exceptions_are_not_swallowed() -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(run_in_threadpool(interrupt))


def walk(tb):  # type: ignore[no-untyped-def]
    while tb is not None:
        yield tb
        tb = tb.tb_next
