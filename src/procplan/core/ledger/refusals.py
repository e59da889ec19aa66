"""A booking refused by the bookings alone: the answer the writer would give, found first.

The writer's check (``store.ledger_holds``) reads every active claim on the asked GPUs,
bookings and jobs, inside the write transaction. Two of its refusals depend on the bookings
only (``judge`` refuses ``BOOKED`` whatever jobs hold, and a GPU booked over the window is
never a candidate): an asked GPU already booked (rule 1), and fewer GPUs free of bookings
than a count asks for. When the committed ledger already shows one of those, the writer
would answer it too; ``refused_by_bookings`` finds it from the bookings alone, so that a
conflict can be answered from the in-memory mirror without entering the writer (issue #18).
It never refuses what the writer would accept: jobs can only add refusals.

The messages are these functions', used by the writer as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from procplan.core.errors import Conflict
from procplan.core.ledger.rules import Ask, Hold, Refusal, judge

NO_FREE_GPUS = "Not enough GPUs available for the requested window"


def booked_message(gpu_id: str) -> str:
    """Rule 1's refusal: the first asked GPU (in request order) with a booking in the way."""
    return f"GPU '{gpu_id}' is already booked for the requested window"


def refused_by_bookings(
    ask: Ask, gpu_ids: Sequence[str] | None, count: int, node_gpus: Sequence[str],
    holds: Iterable[Hold],
) -> Conflict | None:  # fmt: skip
    """The writer's refusal of ``ask`` (a booking) when bookings alone decide it, else
    ``None``. ``gpu_ids``: the asked GPUs (request order), or ``None`` for ``count`` GPUs
    of ``node_gpus``; ``holds``: booking holds on the node overlapping the window (any
    superset is fine: ``judge`` ignores the rest)."""
    by_gpu: dict[str, list[Hold]] = {}
    for hold in holds:
        by_gpu.setdefault(hold.gpu_id, []).append(hold)
    if gpu_ids:
        for gpu_id in gpu_ids:
            if judge(ask, by_gpu.get(gpu_id, ())).refusal is Refusal.BOOKED:
                return Conflict(booked_message(gpu_id), code="gpu_conflict")
        return None
    free = sum(1 for gpu_id in node_gpus if judge(ask, by_gpu.get(gpu_id, ())).ok)
    if free < count:
        return Conflict(NO_FREE_GPUS, code="no_free_gpus")
    return None
