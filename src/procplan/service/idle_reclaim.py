"""Idle reclaim of booked GPUs (issue #14, ADR 0013): the leader's periodic check.

Every ``every_s`` (by the injected clock) the leader's housekeeping looks at the bookings in
force, samples their GPUs from the agents' latest reports (``NodeService.statuses``: the
stored rows, so any server process sees them), lets the pure rules (``core.idle.decide``)
choose, and applies: state changes and warnings in one transaction with their outbox notes,
releases through the booking release path (the ledger version moves and ``LEDGER_CHANGED`` is
published, so the cycle that follows in the same housekeeping pass sees the freed GPUs).
The owner's "keep" is the one user-facing write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from procplan.core.errors import DomainError
from procplan.core.identity import AuditEntry
from procplan.core.idle import (
    Action,
    GpuSample,
    IdleSettings,
    IdleState,
    booking_idle,
    booking_released,
    booking_use,
    decide,
    enabled_for,
)
from procplan.core.jobs import Job
from procplan.core.model import Booking
from procplan.core.node_view import SeenProcess
from procplan.core.notes import Note
from procplan.core.timeutil import Instant
from procplan.service.bookings import BookingService, released_end
from procplan.service.clock import Clock
from procplan.service.events import Event
from procplan.service.nodes import NodeService
from procplan.store.idle_repo import IdleStore
from procplan.wire.node_status import processes_of, readings_of

LOG = logging.getLogger("procplan.idle")

SYSTEM_ACTOR = "procplan"  # the audit log's actor for what the leader does by itself


class IdleReclaim:
    """See the module docstring. ``run`` is the throttled housekeeping entry point,
    ``check`` one pass now."""

    def __init__(
        self,
        bookings: BookingService,
        nodes: NodeService,
        clock: Clock,
        settings: IdleSettings,
        every_s: int = 30,
    ) -> None:
        self.bookings = bookings
        self.nodes = nodes
        self.clock = clock
        self.settings = settings
        self.every_s = every_s
        self.store = IdleStore(bookings.store, bookings.bookings.writes)
        self._next: Instant | None = None

    def run(self) -> None:
        """One pass when ``every_s`` has passed since the last (leader's housekeeping)."""
        now = self.clock.now()
        if self._next is not None and now < self._next:
            return
        self._next = now + self.every_s
        try:
            self.check()
        except Exception:  # the store may be briefly unavailable: the next pass retries
            LOG.exception("idle reclaim check failed")

    def check(self) -> list[tuple[int, Action]]:
        """Decide and apply for every booking in force now; returns what was done (warnings
        and releases) by booking id."""
        now = self.clock.now()
        overrides = self.store.tenant_overrides()
        if not self.settings.enabled and not any(overrides.values()):
            self.store.forget_all()
            return []
        in_force = [b for b in self.bookings.active_at(None, now) if b.start <= now]
        if not in_force:
            return []
        states = self.store.states(b.id for b in in_force)
        samples = self._samples(now)
        changes: list[tuple[int, IdleState, Note | None]] = []
        releases: list[tuple[Booking, IdleState, str]] = []
        done: list[tuple[int, Action]] = []
        for booking in in_force:
            state = states.get(booking.id, IdleState())
            enabled = enabled_for(self.settings.enabled, overrides.get(booking.user))
            use = booking_use([samples(booking, gpu) for gpu in booking.gpu_ids], self.settings)
            decision = decide(state, use, self.settings, enabled, now)
            if decision.action is Action.RELEASE:
                releases.append((booking, decision.state, decision.reason))
            elif decision.state != state:
                note = None
                if decision.action is Action.WARN:
                    release_at = now + self.settings.grace_s
                    note = booking_idle(booking, decision.state, release_at)
                changes.append((booking.id, decision.state, note))
            if decision.action is not Action.NONE:
                done.append((booking.id, decision.action))
        self.store.save(changes, now)
        for booking, state, reason in releases:
            self._release(booking, state, reason, now)
        return done

    def _release(self, booking: Booking, state: IdleState, reason: str, now: Instant) -> None:
        end = released_end(booking, now)
        entry = AuditEntry(
            now, SYSTEM_ACTOR, "booking.release", f"booking {booking.id}", booking.user,
            detail=reason,
        )  # fmt: skip
        note = booking_released(booking, reason, now)
        try:
            released = self.store.release(booking.id, end, now, state, note, entry)
        except DomainError as exc:  # released or cancelled by its owner meanwhile
            LOG.debug("booking %s: %s", booking.id, exc)
            return
        if released is None:
            return  # kept meanwhile
        LOG.info("booking %s released: %s", booking.id, reason)
        self.bookings.events.publish(Event.LEDGER_CHANGED)

    def _samples(self, now: Instant) -> Callable[[Booking, str], GpuSample | None]:
        """A lookup of each booked GPU's latest sample (``None``: no fresh reading)."""
        topology = self.bookings.topology()
        statuses = self.nodes.statuses()
        running = self.nodes.running_by_node()
        cache: dict[str, tuple[dict[int, tuple[float | None, int | None]], list[SeenProcess]]] = {}

        def node_view(
            node_id: str,
        ) -> tuple[dict[int, tuple[float | None, int | None]], list[SeenProcess]] | None:
            if node_id not in cache:
                status = statuses.get(node_id)
                if status is None or not self.nodes.is_online(status, float(now)):
                    return None
                if status.report.get("read_error"):
                    return None
                readings = {
                    r.index: (r.utilization_pct, r.memory_used_mb)
                    for r in readings_of(status.report)
                    if not r.mig
                }
                cache[node_id] = (readings, processes_of(status.report))
            return cache[node_id]

        def sample(booking: Booking, gpu_id: str) -> GpuSample | None:
            node = topology.node(booking.node_id)
            view = node_view(booking.node_id)
            gpu = None if node is None else next((g for g in node.gpus if g.id == gpu_id), None)
            if view is None or gpu is None or gpu.index not in view[0]:
                return None
            util, memory = view[0][gpu.index]
            owner = _owner_on(booking, gpu_id, view[1], running.get(booking.node_id, []))
            return GpuSample(util, memory, owner)

        return sample

    # ---- the owner's answer --------------------------------------------------------------

    def keep(
        self, booking_id: int, allowed: Callable[[Booking], None] | None = None
    ) -> tuple[Booking, IdleState]:
        """Never reclaim this booking (the owner answered the warning, or wants it safe)."""
        return self.store.keep(booking_id, allowed)

    def set_tenant(self, tenant_id: str, enabled: bool | None) -> None:
        """A tenant's override of the cluster setting (``None``: follow it)."""
        self.store.set_tenant(tenant_id, enabled)

    def state(self, booking_id: int) -> IdleState:
        return self.store.state(booking_id) or IdleState()

    def states(self, booking_ids: Sequence[int]) -> Mapping[int, IdleState]:
        return self.store.states(booking_ids)


def _owner_on(
    booking: Booking, gpu_id: str, processes: Sequence[SeenProcess], running: Sequence[Job]
) -> bool:
    """A process of the booking's owner runs on the GPU: their own (by user name, or
    classified ``booked``: its user holds this GPU's booking now), or a process of one of
    the owner's jobs; a running job of the owner that holds the GPU counts too (it may be
    starting and show no process yet)."""
    owner_jobs = {job.id for job in running if job.user == booking.user}
    if any(job.id in owner_jobs and gpu_id in job.gpu_ids for job in running):
        return True
    for process in processes:
        if process.gpu_id != gpu_id:
            continue
        if process.user == booking.user or process.kind == "booked":
            return True
        if process.job_id is not None and process.job_id in owner_jobs:
            return True
    return False
