"""Refuse a booking from the in-memory ledger when the bookings alone already refuse it.

Under ProcPlan 1.0's conflict-heavy write mix (issue #18) about half of all booking attempts
are refused. Each used to enter the writer: a thread hop, a write transaction holding the
database's write lock, the holds query, a rollback. The committed ledger is in memory
(``store.ledger_mirror``, synced by one version probe), and the rules that decide a refusal by
bookings alone are the core's (``core.ledger.refusals``): when they refuse, the writer would
refuse the same way, so the answer is given here. Anything else (accepted, refused by a job,
an invalid request, a drained node) goes to the writer, which decides as before.

The refusal is as of the committed ledger at the probe: a request refused here is
linearised at that instant, the way a read is. Only ProcPlan's ``/api/book`` uses this: its
refusals are one sentence, where native refusals add who holds the GPUs and the next free
window, read in the writer's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from procplan.core.bookings import validate_request
from procplan.core.errors import DomainError
from procplan.core.ledger import Ask, Hold, Holder
from procplan.core.ledger.refusals import refused_by_bookings
from procplan.core.model import BookingRequest
from procplan.service.bookings import BookingService

__all__ = ["refuse_from_mirror"]


def refuse_from_mirror(
    bookings: BookingService,
    req: BookingRequest,
    *,
    whole_hours: bool,
    drained: Callable[[int], Mapping[str, object]] | None = None,
) -> None:
    """Raise the writer's refusal of ``req`` if the committed bookings decide it; else
    return (the writer then decides). ``drained``: the drained nodes as of a topology
    version (a drained node's refusal is the writer's ``node_draining``, which comes before
    any conflict)."""
    topology = bookings.topology()
    node = topology.node(req.node_id)
    if node is None:
        return
    try:
        validate_request(req, node, bookings.clock.now(), bookings.limits, whole_hours=whole_hours)
    except DomainError:
        return  # the writer reports it, against the node as stored
    if drained is not None and req.node_id in drained(bookings.topology_cache.version):
        return
    holds = [
        Hold(Holder.BOOKING, b.id, b.user, gpu_id, b.start, b.end)
        for b in bookings.mirror.active_window([req.node_id], req.start, req.end)
        for gpu_id in b.gpu_ids
    ]
    ask = Ask.booking(req.user, req.start, req.end)
    node_gpus = [gpu.id for gpu in node.gpus]
    refused = refused_by_bookings(ask, req.gpu_ids, req.gpu_count or 0, node_gpus, holds)
    if refused is not None:
        try:
            raise refused
        finally:  # the frame's local would keep the exception, and its traceback this frame
            del refused  # (a cycle that only the collector frees, with the whole request)
