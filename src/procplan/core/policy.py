"""The scheduler's knobs (``Policy``): the weights of the priority formula, the preemption
rules, backfill and draining. Settings build one (``server.policy_from``); the planner, the
priority model and the simulator read it. ``core.jobs`` re-exports it."""

from __future__ import annotations

from dataclasses import dataclass

from procplan.core.timeutil import DAY, MINUTE


@dataclass(frozen=True, slots=True)
class Policy:
    """The scheduler's knobs (from Settings). Priority follows Slurm's multifactor plugin:

    ``effective = priority + tier + w_age·age + w_fairshare·fairshare + w_size·size
    + w_length·length``, each factor in ``[0, 1]``: age grows linearly with time waited up to
    ``max_age_s`` (bounded, and a function of time, not of cycles), fair-share is
    ``2^(-usage/share)`` over usage decayed with ``half_life_s``, size is the job's share of
    the cluster's GPUs, length favours short time limits (``core.priority.length_factor``;
    0 for open-ended jobs). ``weight_length`` no larger than ``weight_age`` keeps waits
    bounded: a job that waited ``max_age_s`` outranks every newer job of its class (ADR 0017).
    """

    weight_age: float = 1000.0
    max_age_s: int = DAY
    weight_fairshare: float = 1000.0
    weight_size: float = 0.0
    weight_length: float = 0.0
    length_ref_s: int = 7 * DAY  # a time limit this long or longer gets length factor 0
    half_life_s: int = DAY
    min_runtime_s: int = 5 * MINUTE  # a job is not preempted before it ran this long
    preempt_grace_s: int = 30  # SIGTERM, then SIGKILL after this
    booking_warning_s: int = 10 * MINUTE  # notice ahead of a foreign booking's start
    reserve_depth: int = 100  # blocked jobs that get a reservation and an estimated start
    foreign_gpus_blocked: bool = True  # GPUs running processes we did not start are not used
    preemption: bool = True
    # A job preempted this many times is no longer a victim (except of a booking that begins).
    max_preemptions: int = 3
    # The same pair of jobs never swaps GPUs twice within this window (the thrash guard).
    thrash_window_s: int = 30 * MINUTE
    # The first blocked job whose start is unknown (open-ended jobs hold what it needs) drains
    # the GPUs it will use once it has waited this long: no new job takes them (ADR 0015).
    drain_after_s: int = 0
    # Backfill: a job may start ahead of a blocked one when it delays no reservation. Off is
    # strict priority order (Slurm's sched/builtin): nothing passes the first blocked job.
    backfill: bool = True
