"""Fair-share: decayed usage per tenant and the factor the priority formula uses.

Usage is GPU-seconds, decayed exponentially with a half-life (Slurm's PriorityDecayHalfLife),
so last week's heavy user is not punished forever. The store keeps one ``(usage, as_of)`` pair
per tenant and folds each finished job in with ``add_usage``; the planner adds running jobs.
"""

from __future__ import annotations

from procplan.core.timeutil import Instant


def decayed(usage: float, as_of: Instant, now: Instant, half_life_s: int) -> float:
    """``usage`` measured at ``as_of``, decayed to ``now`` (never grows; no decay backwards)."""
    if usage <= 0.0:
        return 0.0
    elapsed = now - as_of
    if elapsed <= 0 or half_life_s <= 0:
        return usage
    return float(usage * 0.5 ** (elapsed / half_life_s))


def add_usage(
    usage: float, as_of: Instant, gpu_seconds: float, now: Instant, half_life_s: int
) -> float:
    """New decayed total at ``now`` after adding ``gpu_seconds`` of work that ended now."""
    return decayed(usage, as_of, now, half_life_s) + max(gpu_seconds, 0.0)


def fairshare_factor(usage: float, total_usage: float, share: float) -> float:
    """Slurm's classic ``2^(-U/S)``: ``U`` the tenant's fraction of all decayed usage, ``S``
    its fraction of the weights. 1.0 for a tenant that used nothing, 0.5 at exactly its share,
    towards 0 for heavy users; a tenant with no share gets 0."""
    if share <= 0.0:
        return 0.0
    if total_usage <= 0.0 or usage <= 0.0:
        return 1.0
    return float(2.0 ** (-(usage / total_usage) / share))
