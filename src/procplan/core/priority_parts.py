"""The effective priority of each pending job split into its parts, like Slurm's ``sprio``.

``PriorityModel.effective`` is one number; people asking "why did that tenant go first" need
its terms: the class (the job's priority plus its tenant's tier), and the weighted age,
fair-share, size and length factors (``core.priority``'s formula). ``priority_parts`` reads them off
the same model the planner builds for the same snapshot, in the planner's queue order, and
``effective`` is the model's own number, so the table never disagrees with the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from procplan.core.jobs import Job, Policy, Snapshot
from procplan.core.priority import PriorityModel, age_factor, tenant_of
from procplan.core.timeutil import Instant

__all__ = ["PriorityParts", "priority_parts"]


@dataclass(frozen=True, slots=True)
class PriorityParts:
    """One pending job's effective priority and its weighted terms (``class_ + age +
    fairshare + size + length`` equals ``effective`` up to float rounding)."""

    job_id: int
    user: str
    tenant: str
    class_: int  # the job's priority plus its tenant's tier
    age: float
    fairshare: float
    size: float
    length: float
    effective: float


def _parts(
    job: Job, model: PriorityModel, snapshot: Snapshot, now: Instant, policy: Policy, size: float
) -> PriorityParts:
    tier = tenant_of(snapshot.tenants, job.tenant).priority_tier
    return PriorityParts(
        job_id=job.id,
        user=job.user,
        tenant=job.tenant,
        class_=job.priority + tier,
        age=policy.weight_age * age_factor(job.submitted_at, now, policy.max_age_s),
        fairshare=model.tenant_part(job.tenant) - tier,
        size=size * job.gpu_count,
        length=model.length_part(job.time_limit_s),
        effective=model.effective(job),
    )


def priority_parts(snapshot: Snapshot, now: Instant, policy: Policy) -> list[PriorityParts]:
    """Every pending job of ``snapshot``, in the order the planner visits them at ``now``."""
    model = PriorityModel(snapshot, now, policy)
    total_gpus = snapshot.topology.gpu_count
    size_per_gpu = policy.weight_size / total_gpus if total_gpus else 0.0
    return [
        _parts(job, model, snapshot, now, policy, size_per_gpu)
        for job in model.queue(snapshot.pending)
    ]
