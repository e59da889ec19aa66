"""One in-process event bus: what changed, published after the commit that changed it.

Every service that writes publishes one ``Event`` kind after its transaction commits; the
scheduling cycle and the long-poll waiters subscribe. It replaces per-service listener lists
and callbacks, so a new subscriber (notifications, a cache) is one ``subscribe`` call.

Who publishes what, and who listens:

====================  ==========================================  =============================
event                 published by (after the commit)             subscribers (in ``compose``)
====================  ==========================================  =============================
``JOBS_CHANGED``      ``JobService``: submit, finish, requeue,     the cycle, the waiters
                      launch (not heartbeats: they plan nothing)
``TENANTS_CHANGED``   ``TenantService``: tenants and members       the cycle, the waiters
``LEDGER_CHANGED``    ``BookingService``: booking writes           the cycle
``NODES_CHANGED``     ``NodeService`` (registration, offline,      the cycle
                      foreign GPUs, drain/resume/remove),
                      ``BookingService`` (topology)
``PLAN_APPLIED``      the cycle's publish phase, when its apply    the waiters (never the cycle:
                      wrote something                              it would wake itself)
====================  ==========================================  =============================

Callbacks run in the publisher's thread, in subscription order, and must be cheap (set an
event, bump a counter). One that raises is logged and skipped: a subscriber never breaks the
write that published, nor the subscribers after it. Other processes sharing the database do
not see this bus; they notice commits through the version counters (``cycle``, ``waiting``).
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterable

LOG = logging.getLogger("procplan.events")


class Event(enum.Enum):
    """What kind of state a commit changed."""

    JOBS_CHANGED = "jobs_changed"
    TENANTS_CHANGED = "tenants_changed"
    LEDGER_CHANGED = "ledger_changed"
    NODES_CHANGED = "nodes_changed"
    PLAN_APPLIED = "plan_applied"


Callback = Callable[[Event], object]
ALL: frozenset[Event] = frozenset(Event)


class EventBus:
    """``subscribe(kinds, callback)``; ``publish(kind)`` calls that kind's subscribers.

    Subscribing is rare (at start-up) and publishing frequent (every write), so each kind
    keeps a ready tuple of its callbacks, replaced whole on (un)subscribe: ``publish`` takes
    no lock and allocates nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: list[tuple[frozenset[Event], Callback]] = []
        self._routes: dict[Event, tuple[Callback, ...]] = {kind: () for kind in Event}

    def subscribe(
        self, kinds: Event | Iterable[Event] | None, callback: Callback
    ) -> Callable[[], None]:
        """Call ``callback(event)`` after each publish of one of ``kinds`` (``None`` or
        ``ALL``: every kind). Returns the function that unsubscribes it."""
        wanted = ALL if kinds is None else frozenset([kinds] if isinstance(kinds, Event) else kinds)
        entry = (wanted, callback)
        with self._lock:
            self._subscriptions.append(entry)
            self._reroute()

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscriptions:
                    self._subscriptions.remove(entry)
                    self._reroute()

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Tell ``event``'s subscribers (call only after the change is committed)."""
        for callback in self._routes[event]:
            try:
                callback(event)
            except Exception:  # a subscriber must never break the publisher: log and go on
                LOG.exception("subscriber %r of %s failed", callback, event.value)

    def subscribers(self, event: Event) -> int:
        """How many callbacks ``event`` reaches (for tests and diagnostics)."""
        return len(self._routes[event])

    def _reroute(self) -> None:
        """Rebuild the per-kind tuples (called with the lock held)."""
        self._routes = {
            kind: tuple(cb for kinds, cb in self._subscriptions if kind in kinds) for kind in Event
        }
