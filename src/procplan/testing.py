"""Fakes shipped with the package so tests (ours and users') need no mocks.

``FakeClock`` is a settable clock. ``FakeGpuReader`` arrives with the node agent.
"""

from __future__ import annotations

from procplan.core.timeutil import Instant


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: Instant = 1_790_000_000) -> None:
        self._now = start

    def now(self) -> Instant:
        return self._now

    def set(self, instant: Instant) -> None:
        self._now = instant

    def advance(self, seconds: int) -> Instant:
        self._now += seconds
        return self._now
