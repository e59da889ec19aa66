"""Blocking calls from async routes on the thread pool, with no reference cycle per refusal.

Starlette's ``run_in_threadpool`` (anyio's worker threads) re-raises a worker's exception in
the route; on the way, the exception's traceback holds anyio's frame, which holds the
asyncio future, which holds the exception: a reference cycle that only the garbage
collector frees, with the whole request behind it (~80 objects a refused booking, issue
#18). Here the worker returns the exception as a value instead, and the route raises it
from a frame that keeps no reference to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool as _starlette_run_in_threadpool

__all__ = ["run_in_threadpool"]

P = ParamSpec("P")
T = TypeVar("T")


class _Raised:
    """What the worker raised, carried back as its result."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _capture(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        return _Raised(exc)


async def run_in_threadpool(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` on a worker thread; its exception is raised here."""
    outcome = await _starlette_run_in_threadpool(_capture, func, args, kwargs)
    if type(outcome) is not _Raised:
        return outcome  # type: ignore[no-any-return]
    error, outcome = outcome.error, None
    try:
        raise error
    finally:
        del error  # this frame is in its traceback: no local may keep it
