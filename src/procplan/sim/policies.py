"""Scheduling policies to compare in the simulator (issue #15, item 2).

Every policy runs through the same production planner (``core.planner.plan``); a policy is
only what the server could be configured with — the planner's knobs (``Policy``) — plus the
``priority`` each job carries, which the planner orders by (and which decides who may
preempt whom: only a strictly higher priority class preempts, ADR 0011):

- ``fifo``: submission order, no backfill (a blocked head blocks everyone: YARN-CS, Slurm's
  ``sched/builtin``), no preemption.
- ``procplan``: the server's defaults — bounded aging, fair-share across groups (the trace's
  VCs, fed back from finished and running work as the server does), backfill with
  reservations, draining for open-ended jobs. All jobs have the same priority, so nothing is
  preempted except for bookings.
- ``procplan-short``: the defaults plus the length factor (``weight_length`` 2000, with
  ``weight_age`` raised to 2000 so that waits stay bounded; ADR 0017): shortest time limit
  first among jobs that waited alike.
- ``sjf``: shortest job first with oracle durations (priority = −duration), backfill, no
  preemption.
- ``srtf``: shortest remaining time first with oracle durations, preemptive: a job whose
  remaining time is shorter than a running job's stops it. Preempted work resumes where it
  stopped (checkpointing assumed, as in the papers compared with).
- ``las``: Tiresias' discretized 2D least-attained-service (no duration knowledge): a job's
  priority class is the band its attained GPU-seconds fall in (``LAS_BANDS``), FIFO inside a
  band, preemptive across bands. Bands, not raw attained service, so that two jobs of equal
  service do not swap GPUs back and forth (Tiresias' reason for discretizing).

The sim applies a preemption at once (the planner is told a grace of 0 s).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from procplan.core.jobs import Policy

# Attained-service band limits of ``las``, in GPU-seconds: < 1 GPU-hour, < 10 GPU-hours, more.
LAS_BANDS = (3_600, 36_000)

# Ranked by ``priority`` alone: no age, fair-share or length factor; preemption immediate.
_RANKED = Policy(weight_age=0.0, weight_fairshare=0.0, weight_length=0.0, preempt_grace_s=0)
_PREEMPTIVE = replace(
    _RANKED, preemption=True, min_runtime_s=0, max_preemptions=1 << 30, thrash_window_s=0
)


class PolicyName(StrEnum):
    FIFO = "fifo"
    PROCPLAN = "procplan"
    PROCPLAN_SHORT = "procplan-short"
    SJF = "sjf"
    SRTF = "srtf"
    LAS = "las"


class Rank(StrEnum):
    """What a job's ``priority`` is under a policy."""

    NONE = "none"  # all equal
    DURATION = "duration"  # −duration (oracle)
    REMAINING = "remaining"  # −remaining time (oracle); changes while running
    ATTAINED = "attained"  # −band of attained GPU-seconds; changes while running


@dataclass(frozen=True, slots=True)
class SimPolicy:
    """A policy as the simulator runs it: the planner's knobs, how jobs are ranked, and
    whether decayed usage is fed back (fair-share)."""

    name: PolicyName
    planner: Policy
    rank: Rank = Rank.NONE
    feeds_usage: bool = False

    @property
    def preemptive(self) -> bool:
        """Jobs may preempt each other (not only bookings their open-ended jobs)."""
        return self.rank in (Rank.REMAINING, Rank.ATTAINED)

    def priority(self, duration_s: int, left_s: int, attained_gpu_s: int) -> int:
        """The ``Job.priority`` of a job with this much work in all, left, and done."""
        rank = self.rank
        if rank is Rank.DURATION:
            return -duration_s
        if rank is Rank.REMAINING:
            return -left_s
        if rank is Rank.ATTAINED:
            return -las_band(attained_gpu_s)
        return 0


def las_band(attained_gpu_s: int) -> int:
    """0 for the least served band, up to ``len(LAS_BANDS)``."""
    return sum(1 for limit in LAS_BANDS if attained_gpu_s >= limit)


def las_next_limit(attained_gpu_s: int) -> int | None:
    """The band limit a running job crosses next (its priority drops there); ``None`` in the
    last band."""
    return next((limit for limit in LAS_BANDS if attained_gpu_s < limit), None)


POLICIES: dict[PolicyName, SimPolicy] = {
    PolicyName.FIFO: SimPolicy(PolicyName.FIFO, replace(_RANKED, preemption=False, backfill=False)),
    PolicyName.PROCPLAN: SimPolicy(
        PolicyName.PROCPLAN, Policy(preempt_grace_s=0), feeds_usage=True
    ),
    PolicyName.PROCPLAN_SHORT: SimPolicy(
        PolicyName.PROCPLAN_SHORT,
        Policy(preempt_grace_s=0, weight_length=2000.0, weight_age=2000.0),
        feeds_usage=True,
    ),
    PolicyName.SJF: SimPolicy(PolicyName.SJF, replace(_RANKED, preemption=False), Rank.DURATION),
    PolicyName.SRTF: SimPolicy(PolicyName.SRTF, _PREEMPTIVE, Rank.REMAINING),
    PolicyName.LAS: SimPolicy(PolicyName.LAS, _PREEMPTIVE, Rank.ATTAINED),
}
