"""The only place the service reads time; tests substitute ``procplan.testing.FakeClock``."""

from __future__ import annotations

import time
from typing import Protocol

from procplan.core.timeutil import Instant


class Clock(Protocol):
    """Anything that tells the current instant (int seconds, UTC)."""

    def now(self) -> Instant: ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> Instant:
        return int(time.time())
