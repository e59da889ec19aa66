"""Effective priority: Slurm's multifactor formula, evaluated once per cycle.

``effective = priority + tier + w_age·age + w_fairshare·fairshare + w_size·size +
w_length·length`` (see ``Policy``). Every factor is a function of the snapshot and ``now``
only, never of how many cycles ran: a job that waited an hour has the same age factor whether
the cycle ticked once a second or once a minute, so event-driven cycles and the periodic tick
agree.

The planner orders the pending queue with it and the preemption search compares running jobs
with it, so both see one number per job.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from operator import attrgetter

from procplan.core.fairshare import fairshare_factor
from procplan.core.jobs import Job, Policy, Snapshot, Tenant
from procplan.core.timeutil import Instant

__all__ = [
    "PriorityModel",
    "age_factor",
    "length_factor",
    "order_pending",
    "tenant_of",
    "tenant_usage",
]


_tenant_of_job = attrgetter("tenant")
_limit_of = attrgetter("time_limit_s")


def tenant_of(tenants: Mapping[str, Tenant], tenant_id: str) -> Tenant:
    """The tenant, or an unlimited one with the default weight when it is not configured, so a
    job of an unknown tenant still runs (the API refuses unknown tenants; old rows may not)."""
    found = tenants.get(tenant_id)
    return found if found is not None else Tenant(id=tenant_id)


def age_factor(submitted_at: Instant, now: Instant, max_age_s: int) -> float:
    """Linear in time waited, capped at 1 after ``max_age_s``: aging lifts old jobs without
    letting a long-forgotten job outrank everything forever."""
    if max_age_s <= 0:
        return 1.0
    waited = now - submitted_at
    if waited <= 0:
        return 0.0
    return min(1.0, waited / max_age_s)


def length_factor(limit_s: int | None, ref_s: int) -> float:
    """1 for a time limit of a minute or less, falling with the logarithm of the limit to 0
    at ``ref_s``; 0 for an open-ended job. Logarithmic, so a 1-minute job is ahead of a
    10-minute one by as much as a 1-hour job of a 10-hour one: shortest-limit-first, the
    order that cuts the average completion time most (ADR 0016), without letting seconds of
    difference between long jobs matter."""
    if limit_s is None:
        return 0.0
    if limit_s <= _MINUTE or ref_s <= _MINUTE:
        return 1.0 if limit_s <= ref_s else 0.0
    return max(0.0, 1.0 - math.log(limit_s / _MINUTE) / math.log(ref_s / _MINUTE))


_MINUTE = 60


def tenant_usage(snapshot: Snapshot, now: Instant) -> dict[str, float]:
    """Decayed finished usage plus the GPU-seconds running jobs have used so far: a tenant
    that holds half the cluster right now is not "light" just because nothing finished yet."""
    usage = {tenant: max(value, 0.0) for tenant, value in snapshot.usage.items()}
    for job in snapshot.running:
        started = job.started_at if job.started_at is not None else now
        used = float(job.gpu_count * max(now - started, 0))
        usage[job.tenant] = usage.get(job.tenant, 0.0) + used
    return usage


def _fairshare_by_tenant(snapshot: Snapshot, now: Instant) -> dict[str, float]:
    """``fairshare_factor`` per tenant; shares are normalised over the tenants that matter now
    (they have jobs or usage), so an idle configured tenant does not dilute everyone."""
    usage = tenant_usage(snapshot, now)
    present = set(usage)
    present.update(map(_tenant_of_job, snapshot.pending))
    weights = {t: max(tenant_of(snapshot.tenants, t).fair_share_weight, 0.0) for t in present}
    total_weight = sum(weights.values())
    total_usage = sum(usage.values())
    factors: dict[str, float] = {}
    for tenant in sorted(present):
        share = weights[tenant] / total_weight if total_weight > 0 else 0.0
        factors[tenant] = fairshare_factor(usage.get(tenant, 0.0), total_usage, share)
    return factors


class PriorityModel:
    """The per-tenant parts of the formula, computed once; ``effective`` is then cheap enough
    to call for every job of a 10,000-job queue."""

    __slots__ = (
        "_fixed",
        "_length",
        "_length_ref",
        "_max_age",
        "_now",
        "_tiers",
        "_w_age",
        "_w_fairshare",
        "_w_length",
        "_w_size_per_gpu",
    )

    def __init__(self, snapshot: Snapshot, now: Instant, policy: Policy) -> None:
        fairshare = _fairshare_by_tenant(snapshot, now)
        tenants = set(fairshare) | set(snapshot.tenants)
        self._fixed: dict[str, float] = {
            tenant: tenant_of(snapshot.tenants, tenant).priority_tier
            + policy.weight_fairshare * fairshare.get(tenant, 1.0)
            for tenant in tenants
        }
        self._tiers: dict[str, int] = {
            tenant: tenant_of(snapshot.tenants, tenant).priority_tier for tenant in tenants
        }
        total_gpus = snapshot.topology.gpu_count
        self._w_size_per_gpu = policy.weight_size / total_gpus if total_gpus else 0.0
        self._w_age = policy.weight_age
        self._w_fairshare = policy.weight_fairshare
        self._max_age = policy.max_age_s
        self._now = now
        self._w_length = policy.weight_length
        self._length_ref = policy.length_ref_s
        self._length: dict[int | None, float] = {None: 0.0}  # time limit -> weighted factor

    def tenant_part(self, tenant: str) -> float:
        """Tier plus weighted fair-share of ``tenant`` (an unseen tenant used nothing)."""
        part = self._fixed.get(tenant)
        return part if part is not None else self._w_fairshare

    def class_of(self, job: Job) -> int:
        """The job's priority class: its ``priority`` plus its tenant's tier, without the age,
        fair-share and size factors. Only a strictly higher class may preempt (ADR 0011):
        those factors order the queue, they never justify stopping running work."""
        return job.priority + self._tiers.get(job.tenant, 0)

    def length_part(self, limit_s: int | None) -> float:
        """``w_length · length_factor`` of a time limit (cached: most jobs share a few)."""
        part = self._length.get(limit_s)
        if part is None:
            part = self._w_length * length_factor(limit_s, self._length_ref)
            self._length[limit_s] = part
        return part

    def effective(self, job: Job) -> float:
        """The job's effective priority at ``now`` (``age_factor`` inlined: this runs for
        every job of the queue)."""
        waited = self._now - job.submitted_at
        max_age = self._max_age
        if waited <= 0:
            age = 0.0
        elif max_age <= 0 or waited >= max_age:
            age = 1.0
        else:
            age = waited / max_age
        return (
            job.priority
            + self._fixed.get(job.tenant, self._w_fairshare)
            + self._w_age * age
            + self._w_size_per_gpu * job.gpu_count
            + self.length_part(job.time_limit_s)
        )

    def queue(self, jobs: Iterable[Job]) -> list[Job]:
        """``jobs`` in scheduling order: highest effective priority first, then the earlier
        submission, then the lower id (FIFO among equals, and deterministic).

        This sorts the whole queue every cycle, so the formula of ``effective`` is inlined in
        one comprehension (same arithmetic, so the same floats), and the three keys are
        applied as stable sorts of indices, least significant first: no per-job key tuples
        (10,000 short-lived objects per cycle are work for the garbage collector)."""
        items = list(jobs)
        now, w_age, w_size = self._now, self._w_age, self._w_size_per_gpu
        fixed, default = self._fixed, self._w_fairshare
        # The length part per distinct time limit (a queue has few), or none when unweighted.
        limits = set(map(_limit_of, items)) if self._w_length else ()
        lengths = {limit: self.length_part(limit) for limit in limits}
        max_age: float = self._max_age if self._max_age > 0 else 1e-9  # <= 0: full age
        negated = [
            -(
                job.priority
                + fixed.get(job.tenant, default)
                + w_age
                * (min(1.0, (now - job.submitted_at) / max_age) if now > job.submitted_at else 0.0)
                + w_size * job.gpu_count
                + (lengths[job.time_limit_s] if lengths else 0.0)
            )
            for job in items
        ]
        order = sorted(range(len(items)), key=[job.id for job in items].__getitem__)
        order.sort(key=[job.submitted_at for job in items].__getitem__)
        order.sort(key=negated.__getitem__)
        return [items[i] for i in order]


def order_pending(jobs: Iterable[Job], model: PriorityModel) -> list[Job]:
    """The pending queue in scheduling order (``PriorityModel.queue``)."""
    return model.queue(jobs)
