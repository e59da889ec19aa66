"""Someone else's process on your booked GPUs (issue #14): the booking's owner is told.

The node service classifies every process its agents report; one that is neither a job's
nor its booking owner's, on a GPU a booking holds now, is an intrusion. Such processes make
their GPU foreign, so the check runs when the foreign GPUs change (``NODES_CHANGED``), over
the processes the node service holds in memory, and writes a note per new intrusion (the
outbox key names booking, GPU and PID: once, whichever server process sees it first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from procplan.core.model import Booking
from procplan.core.node_usage import ProcessKind
from procplan.core.notes import Note, foreign_process
from procplan.core.timeutil import Instant
from procplan.service.clock import Clock
from procplan.service.events import Event, EventBus
from procplan.service.nodes import NodeService
from procplan.store.engine import Store
from procplan.store.outbox import enqueue
from procplan.wire.node_status import processes_of

LOG = logging.getLogger("procplan.notify")
INTRUDERS = (ProcessKind.UNBOOKED.value, ProcessKind.STRAY.value)
MAX_REMEMBERED = 10_000


class IntrusionWatch:
    """See the module docstring; ``check`` is the bus callback."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        nodes: NodeService,
        bookings_at: Callable[[Sequence[str] | None, Instant], list[Booking]],
    ) -> None:
        self.store, self.clock, self.nodes, self.bookings_at = store, clock, nodes, bookings_at
        self.told: set[str] = set()

    def watch(self, events: EventBus) -> None:
        events.subscribe(Event.NODES_CHANGED, self.check)

    def check(self, event: Event | None = None) -> int:
        """Write a note for each intrusion not told yet; how many."""
        now = self.clock.now()
        notes = [n for n in self.intrusions(now) if n.key not in self.told]
        if not notes:
            return 0
        with self.store.write() as conn:
            for note in notes:
                enqueue(conn, note, now)
        if len(self.told) > MAX_REMEMBERED:
            self.told.clear()
        self.told.update(n.key for n in notes)
        return len(notes)

    def intrusions(self, now: Instant) -> list[Note]:
        found: list[Note] = []
        for node_id, status in self.nodes.statuses().items():
            seen = [p for p in processes_of(status.report) if p.kind in INTRUDERS and p.gpu_id]
            if not seen:
                continue
            for booking in self.bookings_at([node_id], now):
                for p in seen:
                    if p.gpu_id in booking.gpu_ids and p.user != booking.user:
                        found.append(foreign_process(booking, p.user, p.pid, p.gpu_id))
        return found
