"""Audits of the ledger rules, independent of the ``Ledger`` index.

Used by property tests and by the store's overlap audit: an audit that shared the ledger's
bisect logic would share its bugs, so this is a separate, simple sweep.
"""

from __future__ import annotations

from collections.abc import Iterable

from procplan.core.model import Claim

__all__ = ["find_overlaps"]


def find_overlaps(claims: Iterable[Claim]) -> list[tuple[Claim, Claim]]:
    """Every pair of claims on the same GPU whose half-open intervals overlap.

    Each pair is (earlier start, later start). Empty claims (end <= start) overlap nothing.
    A sweep per GPU: O(n log n + pairs).
    """
    per_gpu: dict[str, list[Claim]] = {}
    for claim in claims:
        if claim.end > claim.start:
            per_gpu.setdefault(claim.gpu_id, []).append(claim)
    pairs: list[tuple[Claim, Claim]] = []
    for items in per_gpu.values():
        items.sort(key=lambda c: (c.start, c.end, c.booking_id))
        open_claims: list[Claim] = []
        for claim in items:
            open_claims = [c for c in open_claims if c.end > claim.start]
            pairs.extend((other, claim) for other in open_claims)
            open_claims.append(claim)
    return pairs
