"""``GET /api/v1/queue/priority``: each pending job's effective priority and its parts, in
queue order (Slurm's ``sprio``; ``core.priority_parts``).

Ids are strings, as in every job object (``wire.jobs``). The parts are the weighted terms of
the formula, rounded to two decimals for people; ``effective`` is their sum as the planner
computes it (so it may differ from the rounded parts' sum in the last digit).
"""

from __future__ import annotations

from collections.abc import Sequence

from procplan.core.priority_parts import PriorityParts
from procplan.core.timeutil import Instant
from procplan.wire.base import Json, iso_or_none

__all__ = ["priority_json", "priority_list"]

DECIMALS = 2


def priority_json(parts: PriorityParts, position: int) -> Json:
    """One row: who, the class (job priority + tenant tier) and the weighted factors."""
    return {
        "job_id": str(parts.job_id),
        "position": position,
        "user": parts.user,
        "tenant": parts.tenant,
        "priority": parts.class_,
        "age": round(parts.age, DECIMALS),
        "fairshare": round(parts.fairshare, DECIMALS),
        "size": round(parts.size, DECIMALS),
        "length": round(parts.length, DECIMALS),
        "effective": round(parts.effective, DECIMALS),
    }


def priority_list(ranked: Sequence[tuple[int, PriorityParts]], total: int, now: Instant) -> Json:
    """The answer: ``(position, parts)`` rows in queue order (positions are 1-based places in
    the whole queue, so they stay true when the list is filtered), how many rows matched, and
    the instant the factors were computed for (age grows with it)."""
    answer: Json = {
        "as_of": iso_or_none(now),
        "jobs": [priority_json(parts, position) for position, parts in ranked],
        "total": total,
    }
    if total > len(ranked):
        answer["truncated"] = True
    return answer
