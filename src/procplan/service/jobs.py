"""Job use cases: submit (validated, tenant and booking checked), cancel, release, finish,
and the status views. The cycle (``service.cycle``) starts jobs; this module never does.

Every write publishes ``JOBS_CHANGED`` on the event bus after its commit: the cycle's wake-up
(and the waiters'). Heartbeats are the exception: a renewed lease changes nothing anyone plans
or waits on, and clients send them every few seconds. The cycle reads and writes through the
ports ``snapshot`` and ``apply`` (``service.cycle_ports``).
"""

from __future__ import annotations

import builtins
import dataclasses
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from procplan.core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from procplan.core.job_validation import JobLimits, validate_job_request
from procplan.core.jobs import (
    RELEASE_BOOKING,
    Job,
    JobKind,
    JobRequest,
    JobState,
    NodeState,
    Plan,
    Policy,
    Snapshot,
    Tenant,
)
from procplan.core.lifecycle import check_transition
from procplan.core.model import Booking, Topology
from procplan.core.priority_parts import PriorityParts, priority_parts
from procplan.core.timeutil import Instant, to_iso
from procplan.core.views import ClusterCounts, LocalStatus
from procplan.service.bookings import BookingService
from procplan.service.clock import Clock
from procplan.service.events import Event, EventBus
from procplan.service.tenants import TenantService, TenantUsage
from procplan.store.engine import Store
from procplan.store.jobs_repo import ApplyResult, JobFilter, JobStore
from procplan.store.tenants_repo import TenantStore
from procplan.store.write_batcher import WriteBatcher

__all__ = ["JobFilter", "JobService", "JobSettings", "TenantUsage"]


@dataclass(frozen=True)
class JobSettings:
    """The job queue's knobs (from ``config.Settings``)."""

    lease_ttl_s: int = 30
    local_node: str | None = None
    local_host: str = field(default_factory=socket.gethostname)
    max_array_size: int = 10_000
    policy: Policy = field(default_factory=Policy)
    limits: JobLimits = field(default_factory=JobLimits)


class JobService:
    """Everything the APIs do with jobs and tenants."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        bookings: BookingService,
        settings: JobSettings,
        events: EventBus | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.bookings = bookings
        self.settings = settings
        self.events = events if events is not None else EventBus()
        self.jobs = JobStore(store, bookings.mirror, settings.policy.half_life_s)
        self.tenants_store = TenantStore(store, self.write_batcher)
        self.tenants = TenantService(
            self.tenants_store, clock, settings.policy.half_life_s, self.events
        )
        self._limits = dataclasses.replace(settings.limits, max_array_size=settings.max_array_size)
        # Called with each new job that names a client PID, after the commit: ``compose``
        # wires the housekeeper's pidfd watch (``leases.Housekeeper.watch``).
        self.watch_client: Callable[[Job], None] | None = None

    def _changed(self) -> None:
        self.events.publish(Event.JOBS_CHANGED)

    @property
    def write_batcher(self) -> WriteBatcher:
        """The group commit of this process's job writes (ADR 0004): tenant writes and the
        audit log ride along with it."""
        return self.jobs.writes

    # ---- submission --------------------------------------------------------------------

    def submit(self, req: JobRequest) -> list[Job]:
        """Validate and queue ``req`` (one job, or one per array index)."""
        now = self.clock.now()
        topology = self.bookings.recent_topology()
        validate_job_request(req, topology, self._limits)
        tenant, members = self.tenants.admission(req.tenant, req.user)
        self._check_member(tenant, members, req.user)
        booking = self._booking_of(req, now)
        if booking is not None and req.node_id is None:
            req = dataclasses.replace(req, node_id=booking.node_id)
            validate_job_request(req, topology, self._limits)  # it must fit the booked node
        self._check_quota(tenant, req)
        lease = now + self.settings.lease_ttl_s if req.kind is JobKind.INTERACTIVE else None
        created = self.jobs.submit(_rows(req, tenant.id, lease), now)
        self._changed()
        if self.watch_client is not None and req.pid is not None:
            for job in created:
                self.watch_client(job)
        return created

    @staticmethod
    def _check_member(tenant: Tenant, members: tuple[str, ...], user: str) -> None:
        if members and user not in members:
            raise Forbidden(
                f"User '{user}' is not a member of tenant '{tenant.id}'; "
                "ask its admin to add you, or submit without a tenant",
                code="not_member",
            )

    def _booking_of(self, req: JobRequest, now: Instant) -> Booking | None:
        """The booking a job names: it must exist, be the user's own and active now."""
        if req.booking_id is None:
            return None
        booking = self.bookings.find(req.booking_id)
        if booking is None:
            raise NotFound(f"Booking '{req.booking_id}' does not exist", code="unknown_booking")
        if booking.user != req.user:
            raise Forbidden(
                f"Booking {booking.id} belongs to '{booking.user}': a job may only use "
                "its own user's bookings",
                code="not_booking_owner",
            )
        if not booking.is_active or booking.end <= now:
            state = booking.status.value if not booking.is_active else "over"
            raise Conflict(
                f"Booking {booking.id} is {state} (it ran until {to_iso(booking.end)}): "
                "name an active booking or none",
                code="booking_inactive",
            )
        if req.node_id is not None and req.node_id != booking.node_id:
            raise InvalidRequest(
                f"node_id '{req.node_id}' is not the node of booking {booking.id} "
                f"('{booking.node_id}'): drop node_id or name that node",
                code="node_mismatch",
            )
        return booking

    def _check_quota(self, tenant: Tenant, req: JobRequest) -> None:
        """Refuse only what can never run: more than the tenant may ever hold (Go's 403)."""
        cap = tenant.max_gpus
        if cap is not None and req.gpu_count > cap and not tenant.allow_borrow:
            current = self._held(tenant, lambda j: j.gpu_count)
            raise _quota(tenant, "max_gpus", req.gpu_count, cap, current)
        memory, memory_cap = req.gpu_memory_mb, tenant.max_gpu_memory_mb
        if memory_cap is not None and memory is not None and memory > memory_cap:
            current = self._held(tenant, lambda j: (j.gpu_memory_mb or 0) * j.gpu_count)
            raise _quota(tenant, "max_gpu_memory_mb", memory, memory_cap, current)
        for dimension, key in (("max_cpu_cores", "cpu_cores"), ("max_memory_mb", "memory_mb")):
            limit, asked = getattr(tenant, dimension), req.extra.get(key)
            if limit is not None and _int(asked) > limit:
                current = self._held(tenant, _extra_amount(key))
                raise _quota(tenant, dimension, _int(asked), limit, current)

    def _held(self, tenant: Tenant, amount: Callable[[Job], int]) -> int:
        """What the tenant's running jobs hold of one quota dimension (for the message)."""
        _, running = self.jobs.active()
        return sum(amount(job) for job in running if job.tenant == tenant.id)

    # ---- reads -------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound(f"Job '{job_id}' does not exist", code="unknown_job")
        return job

    def find(self, job_id: int) -> Job | None:
        """The job, in any state; ``None`` when there is none."""
        return self.jobs.get(job_id)

    def list(self, flt: JobFilter) -> tuple[list[Job], int]:
        return self.jobs.page(flt)

    def list_rows(self, flt: JobFilter) -> builtins.list[Job]:
        """``list`` without the total, for the later parts of a page read in parts."""
        return self.jobs.rows(flt)

    def version(self) -> int:
        """The committed ``jobs_version``: moves on every job or tenant write, any process."""
        return self.jobs.version()

    def active(self) -> tuple[tuple[Job, ...], tuple[Job, ...]]:
        """``(pending, running)`` as of the last commit."""
        return self.jobs.active()

    def active_version(self) -> int:
        """The ``jobs_version`` the last ``active`` answered as of (this process's mirror;
        -1 before the first): a cache key for what is derived from the queue."""
        return self.jobs.active_version()

    # ---- what the cycle reads and writes (``service.cycle_ports``) ---------------------

    def snapshot(
        self,
        now: Instant,
        topology: Topology,
        *,
        node_states: Mapping[str, NodeState] | None = None,
        foreign_gpus: frozenset[str] = frozenset(),
        batch_nodes: frozenset[str] | None = None,
    ) -> Snapshot:
        """The planner's input for ``now``, built whole (see ``JobStore.snapshot``)."""
        return self.jobs.snapshot(
            now, topology, self.settings.policy,
            node_states=node_states, foreign_gpus=foreign_gpus, batch_nodes=batch_nodes,
        )  # fmt: skip

    def priority(self, now: Instant) -> builtins.list[PriorityParts]:
        """Every pending job's effective priority and its parts at ``now``, in queue order:
        the cycle's formula over the cycle's snapshot (``sprio``; nodes' states play no part
        in priority, so the snapshot is built without them)."""
        snapshot = self.snapshot(now, self.bookings.recent_topology())
        return priority_parts(snapshot, now, self.settings.policy)

    def apply(self, plan: Plan, now: Instant, *, all_positions: bool = True) -> ApplyResult:
        """Write a plan in one transaction, re-checking every start (the ``PlanWriter``
        port). Publishes nothing: the cycle's publish phase does."""
        return self.jobs.apply(plan, now, self.settings.lease_ttl_s, all_positions=all_positions)

    def expired_leases(self, now: Instant) -> builtins.list[Job]:
        """Unfinished interactive jobs whose lease lapsed before ``now``."""
        return self.jobs.expired_leases(now)

    def watched_here(self) -> builtins.list[Job]:
        """Unfinished interactive jobs whose client PID runs on this host."""
        return self.jobs.watched(self.settings.local_host)

    def overdue_preemptions(self, now: Instant) -> builtins.list[Job]:
        """Running jobs told to stop at least the preemption grace period ago."""
        return self.jobs.overdue_preemptions(now, self.settings.policy.preempt_grace_s)

    # ---- endings -----------------------------------------------------------------------

    def cancel(self, job_id: int, allowed: Callable[[Job], None] | None = None) -> Job:
        """Pending or running → cancelled (409 ``job_finished`` once it has ended);
        ``allowed`` (the caller's owner check) may refuse first by raising."""
        job = self.get(job_id)
        if allowed is not None:
            allowed(job)
        check_transition(job.id, job.state, JobState.CANCELLED, job.kind)
        return self.finish(job_id, JobState.CANCELLED, message="cancelled")

    def heartbeat(self, job_id: int) -> Job:
        """Renew an interactive job's lease (publishes nothing: see the module docstring)."""
        return self.jobs.heartbeat(job_id, self.clock.now(), self.settings.lease_ttl_s)

    def release(
        self, job_id: int, exit_code: int | None, allowed: Callable[[Job], None] | None = None
    ) -> Job:
        """The client is done: running → completed (exit 0 or none) or failed; pending →
        cancelled; finished → 409."""
        job = self.get(job_id)
        if allowed is not None:
            allowed(job)
        if job.state is JobState.PENDING:
            new = JobState.CANCELLED
        elif exit_code in (None, 0):
            new = JobState.COMPLETED
        else:
            new = JobState.FAILED
        check_transition(job.id, job.state, new, job.kind)
        message = "" if exit_code in (None, 0) else f"exited with code {exit_code}"
        return self.finish(job_id, new, exit_code, message)

    def finish(
        self, job_id: int, state: JobState, exit_code: int | None = None, message: str = ""
    ) -> Job:
        ended = self.jobs.finish(job_id, state, self.clock.now(), exit_code, message)
        self._changed()
        self._release_booking_of(ended)
        return ended

    def _release_booking_of(self, job: Job) -> None:
        """Ledger rule 5: a job that ran on a booking whose owner asked for it
        (``release_booking``) ends the booking when it ends, once no other job of the booking
        is still queued or running (an array shares one booking): history stays, the future
        frees up, and the next cycle sees the GPUs."""
        if job.booking_id is None or not job.extra.get(RELEASE_BOOKING) or job.started_at is None:
            return
        pending, running = self.jobs.active()
        if any(other.booking_id == job.booking_id for other in (*pending, *running)):
            return

        def owners_only(booking: Booking) -> None:
            if booking.user != job.user:
                raise Forbidden("only the booking's owner releases it", code="not_booking_owner")

        try:
            self.bookings.release(job.booking_id, whole_hours=False, allowed=owners_only)
        except (NotFound, Forbidden):
            return  # already over, or not theirs: nothing to release

    def requeue(self, job_id: int) -> Job:
        """A preempted or lost batch job back to the queue."""
        requeued = self.jobs.requeue(job_id, self.clock.now())
        self._changed()
        return requeued

    def record_launch(self, job_id: int, run: int, pid: int, host: str, at: float) -> Job | None:
        """A node agent started this run of a batch job (``None``: no longer that run)."""
        launched = self.jobs.record_launch(job_id, run, pid, host, at)
        self._changed()
        return launched

    # ---- status views ------------------------------------------------------------------

    def cluster_status(self) -> ClusterCounts:
        """The Go scheduler's cluster status (``online_nodes`` counts every node; the route
        subtracts those whose agent stopped reporting)."""
        now = self.clock.now()
        topology = self.bookings.topology()
        _, running = self.jobs.active()
        held = {g for job in running for g in job.gpu_ids}
        booked = {g for b in self.bookings.active_at(None, now) for g in b.gpu_ids}
        busy = held | booked
        free = sum(1 for node in topology.nodes for gpu in node.gpus if gpu.id not in busy)
        counts = self.jobs.count_by_state()
        return ClusterCounts(
            total_gpus=topology.gpu_count,
            available_gpus=free,
            total_nodes=len(topology.nodes),
            online_nodes=len(topology.nodes),
            total_jobs=sum(counts.values()),
            pending_jobs=counts.get(JobState.PENDING, 0),
            running_jobs=counts.get(JobState.RUNNING, 0),
        )

    def local_status(self) -> LocalStatus:
        """local-gpu-scheduler's ``/status`` counters for this host's node."""
        node_id = self.settings.local_node or self.settings.local_host
        node = self.bookings.topology().node(node_id)
        index = {gpu.id: gpu.index for gpu in node.gpus} if node is not None else {}
        pending, running = self.jobs.active()
        here = [job for job in running if node_id in job.node_ids]
        _, total = self.jobs.page(JobFilter(node_id=node_id, limit=0))
        return LocalStatus(
            node_id=node_id,
            gpus_total=len(index),
            gpus_allocated=tuple(
                sorted(index[g] for job in here for g in job.gpu_ids if g in index)
            ),
            jobs_running=len(here),
            jobs_queued=sum(1 for job in pending if job.node_id == node_id),
            jobs_total=total,
        )

    # ---- tenants (see service.tenants) -------------------------------------------------

    def create_tenant(self, tenant: Tenant) -> Tenant:
        return self.tenants.create(tenant)

    def update_tenant(self, tenant_id: str, changes: Mapping[str, object]) -> Tenant:
        return self.tenants.update(tenant_id, changes)

    def get_tenant(self, tenant_id: str) -> Tenant:
        return self.tenants.get(tenant_id)

    def list_tenants(self) -> builtins.list[Tenant]:
        return self.tenants.list()

    def tenant_usage(self) -> dict[str, TenantUsage]:
        return self.tenants.usage()

    def members(self, tenant_id: str) -> builtins.list[str]:
        return self.tenants.members(tenant_id)

    def add_member(self, tenant_id: str, user: str) -> None:
        self.tenants.add_member(tenant_id, user)

    def remove_member(self, tenant_id: str, user: str) -> None:
        self.tenants.remove_member(tenant_id, user)


def _rows(req: JobRequest, tenant_id: str, lease: Instant | None) -> list[Job]:
    """The jobs of a request: one, or one per array index named ``<name>[<index>]``."""
    base = Job(
        id=0, user=req.user, tenant=tenant_id, kind=req.kind, name=req.name,
        priority=req.priority, gpu_count=req.gpu_count, nodes=req.nodes, gpu_kind=req.gpu_kind,
        gpu_memory_mb=req.gpu_memory_mb, time_limit_s=req.time_limit_s, node_id=req.node_id,
        booking_id=req.booking_id, command=req.command, workdir=req.workdir, env=req.env,
        stdout_path=req.stdout_path, stderr_path=req.stderr_path, pid=req.pid, host=req.host,
        lease_expires_at=lease, extra=dict(req.extra),
    )  # fmt: skip
    if req.array is None:
        return [base]
    return [
        dataclasses.replace(base, name=f"{req.name}[{index}]", array_index=index)
        for index in req.array
    ]


def _quota(tenant: Tenant, dimension: str, requested: int, quota: int, current: int) -> Forbidden:
    return Forbidden(
        f"quota exceeded for tenant {tenant.id}: {dimension} requested={requested}, "
        f"quota={quota}, current={current}",
        code="quota_exceeded",
    )


def _extra_amount(key: str) -> Callable[[Job], int]:
    """How much of a Go resource field (``cpu_cores``, ``memory_mb``) a job asked for."""
    return lambda job: _int(job.extra.get(key))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
