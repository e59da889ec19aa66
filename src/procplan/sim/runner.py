"""One simulation scenario over one cluster or several partitions (issue #15).

Helios simulated Philly as one cluster per virtual cluster (``cluster.partition_by_group``);
each partition is replayed on its own — its own planner, its own bookings and failures — and
the results are merged, so the metrics read the same whether a scenario had one partition or
eleven. ``Scenario`` names everything but the jobs and the cluster.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from procplan.sim.cluster import Partition
from procplan.sim.engine import LimitMode, QueueSample, SimResult, simulate
from procplan.sim.policies import POLICIES, PolicyName, SimPolicy
from procplan.sim.workload import booking_load, failure_schedule


@dataclass(frozen=True, slots=True)
class Scenario:
    """How to replay: the time-limit mode, the policy, and the load added on top of the trace
    (``booked``: share of GPUs booked each day; ``mtbf_s``/``repair_s``: node failures,
    0 for none; ``seed`` draws both)."""

    limits: LimitMode = LimitMode.ORACLE
    policy: SimPolicy = POLICIES[PolicyName.PROCPLAN]
    booked: float = 0.0
    mtbf_s: int = 0
    repair_s: int = 3600
    seed: int = 1


def run(partitions: Sequence[Partition], scenario: Scenario) -> SimResult:
    """Replay every partition and merge the results."""
    results = []
    for index, (_, jobs, topology) in enumerate(partitions):
        span = max((j.submit_s + j.duration_s for j in jobs), default=0)
        seed = scenario.seed + index
        bookings = booking_load(topology, span, scenario.booked, seed)
        outages = failure_schedule(topology, span, scenario.mtbf_s, scenario.repair_s, seed)
        results.append(
            simulate(jobs, topology, scenario.limits, scenario.policy, bookings, outages)
        )
    return merge(results)


def merge(results: Sequence[SimResult]) -> SimResult:
    """One result of several partitions' (records, counts, and summed queue samples)."""
    if len(results) == 1:
        return results[0]
    merged = SimResult()
    for r in results:
        merged.records.extend(r.records)
        merged.skipped.extend(r.skipped)
        merged.unplaced.extend(r.unplaced)
        merged.events += r.events
        merged.plans += r.plans
        merged.preemptions += r.preemptions
        merged.lost_runs += r.lost_runs
        merged.bookings += r.bookings
        merged.bookings_broken.extend(r.bookings_broken)
    merged.records.sort(key=lambda r: (r.submit_s, r.id))
    merged.samples = sum_samples([r.samples for r in results])
    return merged


def _tagged(index: int, series: Sequence[QueueSample]) -> Iterator[tuple[int, int, QueueSample]]:
    return ((s.t_s, index, s) for s in series)


def sum_samples(series: Sequence[Sequence[QueueSample]]) -> list[QueueSample]:
    """The sum of step functions: at each instant any series changes, the latest values of
    all series added up."""
    latest = [(0, 0)] * len(series)
    pending = busy = 0
    out: list[QueueSample] = []
    tagged = [_tagged(i, one) for i, one in enumerate(series)]
    for t, i, sample in heapq.merge(*tagged):
        old_pending, old_busy = latest[i]
        pending += sample.pending - old_pending
        busy += sample.busy_gpus - old_busy
        latest[i] = (sample.pending, sample.busy_gpus)
        if out and out[-1].t_s == t:
            out[-1] = QueueSample(t, pending, busy)
        else:
            out.append(QueueSample(t, pending, busy))
    return out
