"""GPU history (ADR 0006 §5): readings folded into minute aggregates, and series read back.

Agents report every couple of seconds; storing each reading would be 150 rows a second for a
300-node cluster. Instead each server process folds readings into per-GPU, per-minute sums,
counts and maxima in memory and writes the closed minutes once a minute; the store merges
partial aggregates of the same minute from several processes. The leader rolls minutes into
hours and prunes both by retention.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from procplan.core.errors import InvalidRequest
from procplan.core.readings import GpuReading
from procplan.core.timeutil import DAY, HOUR, MINUTE, Instant
from procplan.store.history_repo import METRICS, HistoryRow, HistoryStore

# API metric name → (column metric, unit)
METRIC_NAMES = {
    "utilization": ("util", "%"),
    "memory_used": ("mem_used", "MiB"),
    "temperature": ("temp", "°C"),
    "power": ("power", "W"),
}
MAX_POINTS = 20_000


def _values(reading: GpuReading) -> tuple[float | None, float | None, float | None, float | None]:
    used = reading.memory_used_mb
    return (
        reading.utilization_pct,
        None if used is None else float(used),
        reading.temperature_c,
        reading.power_w,
    )


class _Bucket:
    __slots__ = ("counts", "maxes", "n", "sums")

    def __init__(self) -> None:
        self.n = 0
        self.sums = [0.0, 0.0, 0.0, 0.0]
        self.counts = [0, 0, 0, 0]
        self.maxes: list[float | None] = [None, None, None, None]

    def add(self, values: Sequence[float | None]) -> None:
        self.n += 1
        for i, value in enumerate(values):
            if value is None:
                continue
            self.sums[i] += value
            self.counts[i] += 1
            current = self.maxes[i]
            self.maxes[i] = value if current is None or value > current else current


class HistoryAccumulator:
    """Per-GPU minute aggregates of this process's readings, until written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, Instant], _Bucket] = {}

    def fold(self, at: float, readings: Iterable[tuple[str, GpuReading]]) -> None:
        """Add ``(gpu id, reading)`` pairs received at ``at`` (server time)."""
        minute = int(at) // MINUTE * MINUTE
        with self._lock:
            for gpu_id, reading in readings:
                key = (gpu_id, minute)
                bucket = self._buckets.get(key)
                if bucket is None:
                    bucket = self._buckets[key] = _Bucket()
                bucket.add(_values(reading))

    def take_closed(self, now: float, *, everything: bool = False) -> list[HistoryRow]:
        """The aggregates of minutes that ended before ``now`` (all of them with
        ``everything``, at shutdown), removed from memory."""
        current = int(now) // MINUTE * MINUTE
        with self._lock:
            keys = [k for k in self._buckets if everything or k[1] < current]
            taken = [(k, self._buckets.pop(k)) for k in keys]
        return [
            HistoryRow(
                gpu_id=gpu_id,
                step_s=MINUTE,
                bucket=minute,
                n=b.n,
                sums=(b.sums[0], b.sums[1], b.sums[2], b.sums[3]),
                counts=(b.counts[0], b.counts[1], b.counts[2], b.counts[3]),
                maxes=(b.maxes[0], b.maxes[1], b.maxes[2], b.maxes[3]),
            )
            for (gpu_id, minute), b in taken
        ]


@dataclass(frozen=True, slots=True)
class Retention:
    minutes_days: int = 14
    hours_days: int = 365


class HistoryKeeper:
    """Writes closed minutes; on the leader also rolls hours up and prunes."""

    def __init__(self, store: HistoryStore, retention: Retention) -> None:
        self.store = store
        self.retention = retention
        self.accumulator = HistoryAccumulator()
        self._rolled_until: Instant | None = None

    def fold(self, at: float, readings: Iterable[tuple[str, GpuReading]]) -> None:
        """Add one report's readings (GPU id, reading) to the minute being accumulated."""
        self.accumulator.fold(at, readings)

    def query(
        self, node_id: str, resolution: int, start: Instant, end: Instant
    ) -> list[HistoryRow]:
        """The stored rows of ``node_id`` at ``resolution`` (``MINUTE`` or ``HOUR``) whose
        bucket lies in ``[start, end)`` (``HistoryStore.query``)."""
        return self.store.query(node_id, resolution, start, end)

    def flush(self, now: float, *, everything: bool = False) -> int:
        rows = self.accumulator.take_closed(now, everything=everything)
        if rows:
            self.store.add(rows)
        return len(rows)

    def maintain(self, now: Instant) -> None:
        """Roll the last closed hours into hourly rows (idempotent) and prune, at most once
        per hour (leader only)."""
        hour = now // HOUR * HOUR
        if self._rolled_until == hour:
            return
        since = hour - 2 * HOUR if self._rolled_until is None else self._rolled_until - HOUR
        self.store.rollup(MINUTE, HOUR, since, hour)
        self.store.prune(MINUTE, now - self.retention.minutes_days * DAY)
        self.store.prune(HOUR, now - self.retention.hours_days * DAY)
        self._rolled_until = hour

    def resolution(self, start: Instant, end: Instant, step: int, now: Instant) -> int:
        """Minute rows when the step is below an hour and the range lies within minute
        retention; hourly rows otherwise."""
        minutes_from = now - self.retention.minutes_days * DAY
        return MINUTE if step < HOUR and start >= minutes_from else HOUR


def series(
    rows: Iterable[HistoryRow],
    gpu_order: Sequence[str],
    metric: str,
    agg: str,
    start: Instant,
    end: Instant,
    step: int,
) -> list[tuple[str, list[tuple[Instant, float | None]]]]:
    """Re-bucket stored rows to ``step``: per GPU, one point per step from ``start`` (the
    mean over the step's readings for ``avg``, the largest reading for ``max``; ``None``
    where nothing was reported)."""
    column = METRICS.index(METRIC_NAMES[metric][0])
    sums: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        if not start <= row.bucket < end:
            continue
        slot = (row.bucket - start) // step
        acc = sums.setdefault((row.gpu_id, slot), [0.0, 0.0, float("-inf")])
        acc[0] += row.sums[column]
        acc[1] += row.counts[column]
        top = row.maxes[column]
        if top is not None and top > acc[2]:
            acc[2] = top
    slots = range((end - start + step - 1) // step)
    out = []
    for gpu_id in gpu_order:
        points: list[tuple[Instant, float | None]] = []
        for slot in slots:
            found = sums.get((gpu_id, slot))
            value: float | None = None
            if found is not None and found[1] > 0:
                value = found[0] / found[1] if agg == "avg" else found[2]
            points.append((start + slot * step, None if value is None else round(value, 2)))
        out.append((gpu_id, points))
    return out


def check_range(metric: str, agg: str, start: Instant, end: Instant, step: int) -> None:
    """Refuse queries that are malformed or would return absurdly many points."""
    if metric not in METRIC_NAMES:
        names = ", ".join(METRIC_NAMES)
        raise InvalidRequest(f"Unknown metric '{metric}': use one of {names}", code="bad_metric")
    if agg not in ("avg", "max"):
        raise InvalidRequest("agg must be 'avg' or 'max'")
    if step < MINUTE:
        raise InvalidRequest(f"step must be at least {MINUTE} seconds")
    if end <= start:
        raise InvalidRequest("end must be after start")
    if (end - start) // step > MAX_POINTS:
        raise InvalidRequest(
            f"{(end - start) // step} points per GPU is too many: use a larger step "
            f"(at most {MAX_POINTS} points)"
        )
