"""Metrics of a replay (issue #15, item 3), as a pure function of the finished jobs.

Definitions (all times in seconds; a job's JCT is ``end - submit``, its queueing delay is the
part of it the job held no GPUs, ``JCT - held``: ``start - submit`` for a job that ran once,
and time spent back in the queue after a preemption or a node failure counts too):

- ``jct_avg`` / ``jct_median`` / ``jct_p99``: p99 is the nearest-rank percentile (the value
  at rank ``ceil(0.99·n)``), so it is always a JCT that occurred.
- ``queue_avg`` / ``queue_max``: queueing delay; ``wide_queue_max``: the longest queueing
  delay of a *wide* job (``WIDE_GPUS`` or more: a whole 8-GPU node), the starvation measure
  of issue #15 item 4 (0 when the trace has none).
- ``makespan``: last end minus first submission.
- ``utilization``: GPU-seconds held (lost work included) / (cluster GPUs × makespan).
- ``preempted``: the share of jobs stopped at least once by a preemption.
- ``fairness``: Jain's index ``(Σx)² / (n·Σx²)`` over groups (VCs, or users), where ``x`` is
  the group's mean *slowdown* (JCT / time held, ≥ 1). 1.0 means every group waited alike
  relative to its jobs' lengths; ``1/n`` means one group bore all of it. Slowdown, not raw
  JCT, so that groups with long jobs are not counted as treated unfairly for being long.

Simulation speed is not here: it needs the real clock, which the CLI reads.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence

from procplan.sim.engine import JobRecord

WIDE_GPUS = 8


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` in (0, 100] of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def jain(values: Sequence[float]) -> float:
    """Jain's fairness index of non-negative values; 1.0 for none or all zero."""
    total, squares = sum(values), sum(v * v for v in values)
    return 1.0 if squares == 0 else total * total / (len(values) * squares)


def summarize(records: Sequence[JobRecord], cluster_gpus: int) -> dict[str, float]:
    """The metrics above; all zero (fairness 1) when no job finished."""
    if not records:
        keys = ("jct_avg", "jct_median", "jct_p99", "queue_avg", "queue_max", "wide_queue_max",
                "makespan")  # fmt: skip
        rest = {"utilization": 0.0, "fairness": 1.0, "jobs": 0.0, "preempted": 0.0}
        return {**dict.fromkeys(keys, 0.0), **rest}
    jcts = [float(r.end_s - r.submit_s) for r in records]
    held = [r.held_s for r in records]
    queues = [jct - h for jct, h in zip(jcts, held, strict=True)]
    makespan = max(r.end_s for r in records) - min(r.submit_s for r in records)
    busy = sum(r.gpus * h for r, h in zip(records, held, strict=True))
    slowdowns: dict[str, list[float]] = defaultdict(list)
    for r, jct, h in zip(records, jcts, held, strict=True):
        slowdowns[r.group].append(jct / max(h, 1))
    return {
        "jobs": float(len(records)),
        "jct_avg": statistics.fmean(jcts),
        "jct_median": float(statistics.median(jcts)),
        "jct_p99": percentile(jcts, 99),
        "queue_avg": statistics.fmean(queues),
        "queue_max": max(queues),
        "wide_queue_max": max(
            (q for r, q in zip(records, queues, strict=True) if r.gpus >= WIDE_GPUS), default=0.0
        ),
        "makespan": float(makespan),
        "utilization": busy / (cluster_gpus * makespan) if cluster_gpus and makespan else 0.0,
        "fairness": jain([statistics.fmean(v) for v in slowdowns.values()]),
        "preempted": sum(1 for r in records if r.preemptions) / len(records),
    }
