"""Node maintenance (issue #16 item 5, ADR 0020): ``procplan node drain|resume|remove``.

The drains are read by the planner every cycle (``NodeService.planner_view``) and by every
node view, so they are cached here and re-read only when ``topology_version`` moves: every
maintenance write bumps it, and the booking service already checks that counter (one tiny
query) before each use of the topology, so a drain made by another server process is seen as
soon as its topology is. After each change the cycle is woken with ``NODES_CHANGED`` (a
resumed node may start waiting jobs at once) and topology caches reload.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from procplan.core.jobs import NodeState
from procplan.core.maintenance import Drain, NodeRecord
from procplan.service.bookings import BookingService
from procplan.service.clock import Clock
from procplan.service.events import Event, EventBus
from procplan.store.engine import Store
from procplan.store.maintenance_repo import MaintenanceStore

__all__ = ["NodeMaintenance", "with_drains"]


class NodeMaintenance:
    """Drain, resume and remove nodes; the current drains, cached by topology version."""

    def __init__(
        self, store: Store, clock: Clock, bookings: BookingService, events: EventBus
    ) -> None:
        self.store = MaintenanceStore(store)
        self.clock = clock
        self.bookings = bookings
        self.events = events
        self._lock = threading.Lock()
        self._cached: tuple[int, dict[str, Drain]] | None = None

    def drains(self) -> Mapping[str, Drain]:
        """Drained nodes by id (retired ones left out), as of the current topology version."""
        self.bookings.topology()  # checks the version counter (and reloads on a move)
        return self.drains_as_of(self.bookings.topology_cache.version)

    def drains_as_of(self, version: int) -> Mapping[str, Drain]:
        """``drains`` for a caller that has just checked the topology (its version)."""
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached[1]
        fresh = self.store.drains()
        with self._lock:
            self._cached = fresh
        return fresh[1]

    def drain(self, node_id: str, reason: str | None, by: str | None) -> NodeRecord:
        """Drain ``node_id``: no new job or booking starts there; its bookings' owners are
        told (outbox notes, in the same transaction)."""
        return self._changed(self.store.drain(node_id, reason, by, self.clock.now()))

    def resume(self, node_id: str) -> NodeRecord:
        """Undo a drain or a removal."""
        return self._changed(self.store.resume(node_id))

    def remove(
        self, node_id: str, running_jobs: Sequence[int], forget: Callable[[str], None]
    ) -> NodeRecord:
        """Retire ``node_id`` (refused while ``running_jobs`` run there or a booking has not
        ended); ``forget`` then drops its agent's live state, so the agent's next heartbeat
        is refused and its re-registration answered ``node_removed``."""
        record = self.store.remove(node_id, running_jobs, self.clock.now())
        forget(node_id)
        return self._changed(record)

    def _changed(self, record: NodeRecord) -> NodeRecord:
        with self._lock:
            self._cached = None
        self.bookings.topology()  # this process reloads now: answers after this see it
        self.events.publish(Event.NODES_CHANGED)
        return record


def with_drains(
    states: Mapping[str, NodeState], drains: Mapping[str, Drain]
) -> dict[str, NodeState]:
    """The planner's node states with drained nodes marked ``draining``; a drained node no
    agent reports for (a config node) gets an up, draining state of its own."""
    merged = dict(states)
    for node_id in drains:
        state = merged.get(node_id)
        merged[node_id] = NodeState(up=True if state is None else state.up, draining=True)
    return merged
