"""Prometheus counters of GPU time by user and tenant (issue #14), computed at scrape time.

``procplan_job_gpu_hours_total{user,tenant}`` (GPU-hours jobs held) and
``procplan_booked_gpu_hours_total{user,tenant}`` (GPU-hours booked; a booking is charged to its
owner's first tenant, as in usage reports) are sums over the claims table up to now. Claims are
never deleted and only ever cut at the moment they end, so the sums only grow and are true
counters, the same on every server replica and across restarts (no in-memory count to lose).
A scrape costs one grouped scan of the claims; answers are reused for ``cache_s`` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from procplan.core.timeutil import HOUR
from procplan.service.usage import UsageService

__all__ = ["UsageCollector"]


class UsageCollector(Collector):
    """Register on a server's registry: ``metrics.registry.register(UsageCollector(usage))``."""

    def __init__(self, usage: UsageService, cache_s: int = 30) -> None:
        self.usage = usage
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cached: tuple[int, list[tuple[str, str, str, float]]] | None = None

    def _rows(self) -> list[tuple[str, str, str, float]]:
        now = self.usage.clock.now()
        with self._lock:
            if self._cached is not None and now - self._cached[0] < self.cache_s:
                return self._cached[1]
            rows = self.usage.repo.gpu_seconds_so_far(now)
            self._cached = (now, rows)
            return rows

    def collect(self) -> Iterable[Metric]:
        ran = CounterMetricFamily(
            "procplan_job_gpu_hours",
            "GPU-hours held by jobs, by user and tenant.",
            labels=["user", "tenant"],
        )
        booked = CounterMetricFamily(
            "procplan_booked_gpu_hours",
            "GPU-hours booked (up to now), by user and the user's first tenant.",
            labels=["user", "tenant"],
        )
        for kind, user, tenant, seconds in self._rows():
            family = ran if kind == "job" else booked
            family.add_metric([user, tenant], seconds / HOUR)
        yield ran
        yield booked
