"""Someone else's process on your booked GPUs (issue #14): the booking's owner is told.

The node service classifies every process its agents report; one that is neither a job's
nor its booking owner's, on a GPU a booking holds now, is an intrusion. Such processes make
their GPU foreign, so the check runs after the foreign GPUs change (``NODES_CHANGED``), over
the statuses the node service holds, and writes a note per new intrusion (the outbox key names
booking, GPU and PID: once, whichever server process sees it first). The check is debounced
(``delay_s`` after the first change, once for a burst): reading every node's status on each of
300 agents' registrations made registering them all take twice as long.
"""

from __future__ import annotations

import logging
import threading
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
from procplan.wire.node_status import foreign_of, processes_of

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
        delay_s: float = 0.5,
    ) -> None:
        self.store, self.clock, self.nodes, self.bookings_at = store, clock, nodes, bookings_at
        self.delay_s = delay_s
        self.told: set[str] = set()
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def watch(self, events: EventBus) -> None:
        events.subscribe(Event.NODES_CHANGED, self.soon)

    def soon(self, event: Event | None = None) -> None:
        """Check ``delay_s`` from now, unless a check is already due (the bus callback: cheap)."""
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.delay_s, self._due)
            self._timer.daemon = True
            self._timer.start()

    def _due(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.check()
        except Exception:  # the next change checks again
            LOG.exception("checking for processes on booked GPUs failed")

    def check(self) -> int:
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
            if not foreign_of(status.report):
                continue
            seen = [p for p in processes_of(status.report) if p.kind in INTRUDERS and p.gpu_id]
            if not seen:
                continue
            for booking in self.bookings_at([node_id], now):
                for p in seen:
                    if p.gpu_id in booking.gpu_ids and p.user != booking.user:
                        found.append(foreign_process(booking, p.user, p.pid, p.gpu_id))
        return found
