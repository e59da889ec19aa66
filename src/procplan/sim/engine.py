"""The event-driven replay: trace jobs through the production planner on a simulated clock.

Why this shape: issue #15 asks for a simulator that exercises ``core.planner.plan`` itself,
not a copy, so every scheduling decision here is the one the server would make. The loop only
does the service's part: at each event time (an arrival or a completion) it builds a
``Snapshot``, asks the planner, and applies the plan's starts, as ``service`` would in one
cycle. The clock is a plain integer that jumps from event to event; nothing reads the real
clock or draws randomness, so two runs of the same trace are identical.

Simplifications of this first slice (stated, not hidden):

- Preemption is off (``Policy(preemption=False)``): no victims to requeue.
- Fair-share usage is not fed back (``Snapshot.usage`` stays empty and its weight is 0);
  ordering is priority (all equal), age, then submission time and id.
- A job wider than any placement the cluster allows is skipped and counted.
- ``LimitMode.ORACLE`` gives each job its real duration as its time limit (reservations and
  backfill work); ``LimitMode.NONE`` submits open-ended jobs (no estimates, greedy starts).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from enum import StrEnum

from procplan.core.jobs import Job, JobKind, JobState, Policy, Snapshot
from procplan.core.model import Topology
from procplan.core.planner import plan
from procplan.sim.traces import TraceJob

# Simulated instants start here (a real-looking epoch keeps any "is it set?" test honest).
SIM_EPOCH = 1_500_000_000

SIM_POLICY = Policy(weight_fairshare=0.0, preemption=False, min_runtime_s=0)


class LimitMode(StrEnum):
    ORACLE = "oracle"  # time limit = the job's real duration
    NONE = "none"  # open-ended jobs: the scheduler knows no durations


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A finished job, times relative to the trace's first submission."""

    id: int
    submit_s: int
    start_s: int
    end_s: int
    gpus: int
    group: str


@dataclass(slots=True)
class SimResult:
    """What a replay produced: finished jobs, the ids it had to skip (too wide for the
    cluster, or never placed), and counts of events and planner calls."""

    records: list[JobRecord] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    unplaced: list[int] = field(default_factory=list)
    events: int = 0
    plans: int = 0


def gang_nodes(gpus: int, topology: Topology) -> int | None:
    """How many nodes a job of ``gpus`` GPUs spans: the fewest ``n`` that divides it evenly
    onto ``n`` nodes large enough (``Job.gpu_count`` must be a multiple of ``Job.nodes``);
    ``None`` when no ``n`` fits this cluster."""
    sizes = sorted((len(n.gpus) for n in topology.nodes), reverse=True)
    for count in range(1, len(sizes) + 1):
        if gpus % count == 0 and sizes[count - 1] >= gpus // count:
            return count
    return None


def _job(sim_id: int, trace: TraceJob, nodes: int, limits: LimitMode) -> Job:
    return Job(
        id=sim_id,
        user=trace.group,
        kind=JobKind.BATCH,
        name=str(trace.id),
        gpu_count=trace.gpus,
        nodes=nodes,
        time_limit_s=trace.duration_s if limits is LimitMode.ORACLE else None,
        submitted_at=SIM_EPOCH + trace.submit_s,
    )


def simulate(
    jobs: list[TraceJob],
    topology: Topology,
    limits: LimitMode = LimitMode.ORACLE,
    policy: Policy = SIM_POLICY,
) -> SimResult:
    """Replay ``jobs`` (sorted by submission, as the readers return them) to the end.

    Simulation ids are positions in ``jobs`` plus one; ``JobRecord.id`` is the trace's id.
    """
    result = SimResult()
    by_id = {i + 1: t for i, t in enumerate(jobs)}
    arrivals = list(by_id.items())
    arrivals.reverse()  # pop() from the end takes the earliest
    pending: dict[int, Job] = {}
    running: dict[int, Job] = {}
    completions: list[tuple[int, int]] = []  # (end instant, sim id)
    while arrivals or completions:
        now = min(
            SIM_EPOCH + arrivals[-1][1].submit_s if arrivals else 1 << 62,
            completions[0][0] if completions else 1 << 62,
        )
        while completions and completions[0][0] <= now:
            end, sim_id = heapq.heappop(completions)
            done = running.pop(sim_id)
            trace = by_id[sim_id]
            assert done.started_at is not None
            result.records.append(
                JobRecord(
                    trace.id,
                    trace.submit_s,
                    done.started_at - SIM_EPOCH,
                    end - SIM_EPOCH,
                    trace.gpus,
                    trace.group,
                )
            )
            result.events += 1
        while arrivals and SIM_EPOCH + arrivals[-1][1].submit_s <= now:
            sim_id, trace = arrivals.pop()
            result.events += 1
            nodes = gang_nodes(trace.gpus, topology)
            if nodes is None:
                result.skipped.append(trace.id)
            else:
                pending[sim_id] = _job(sim_id, trace, nodes, limits)
        # The planner can start nothing when fewer GPUs are free than the narrowest waiting
        # job needs (no preemption, no bookings): skip the call, the outcome is known.
        busy = sum(j.gpu_count for j in running.values())
        if pending and topology.gpu_count - busy >= min(j.gpu_count for j in pending.values()):
            _cycle(pending, running, completions, topology, now, policy, by_id)
            result.plans += 1
    result.unplaced = sorted(by_id[i].id for i in pending)
    result.records.sort(key=lambda r: (r.submit_s, r.id))
    return result


def _cycle(
    pending: dict[int, Job],
    running: dict[int, Job],
    completions: list[tuple[int, int]],
    topology: Topology,
    now: int,
    policy: Policy,
    by_id: dict[int, TraceJob],
) -> None:
    """One scheduler cycle at ``now``: plan, then start what the plan starts (the service's
    apply phase, minus the store). Preemptions cannot occur (see the module docstring)."""
    snapshot = Snapshot(
        topology=topology, running=tuple(running.values()), pending=tuple(pending.values())
    )
    decided = plan(snapshot, now, policy)
    for start in decided.starts:
        job = pending.pop(start.job_id)
        running[start.job_id] = job.changed(
            {
                "state": JobState.RUNNING,
                "started_at": now,
                "node_ids": start.node_ids,
                "gpu_ids": start.gpu_ids,
                "borrowed": start.borrowed,
            }
        )
        heapq.heappush(completions, (now + by_id[start.job_id].duration_s, start.job_id))
