"""Nodes and their agents (ADR 0006): registration, heartbeats, liveness, live state.

A heartbeat is handled in memory: the report is classified (``core.node_usage``; an ended
job's leftovers are ``ending``, not foreign: ``core.node_endings``), folded into
the history accumulator and kept as the node's latest state; a writer thread stores the
latest state of every node that reported, once a second in one transaction (``flush``). Other
server processes, and the planner, read those rows (``statuses``), merged here with the fresher
in-memory state of the nodes that talk to this process.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections.abc import Iterable

from procplan.core.errors import Conflict, DomainError, NotFound, Unauthorized
from procplan.core.jobs import Job, JobKind, JobState, NodeState
from procplan.core.maintenance import NodeRecord
from procplan.core.model import Booking, Node, Topology
from procplan.core.node_endings import MAX_ENDING_S, EndedJob, attributions, settle_endings
from procplan.core.node_reports import Registered, Registration, Report
from procplan.core.node_usage import (
    ClassifiedProcess,
    GpuFlag,
    classify,
    foreign_gpus,
    is_idle,
    unbooked_gpus,
    uuid_index,
)
from procplan.core.readings import GpuReading
from procplan.service.bookings import BookingService
from procplan.service.clock import Clock
from procplan.service.events import Event, EventBus
from procplan.service.history import HistoryKeeper
from procplan.service.jobs import JobService
from procplan.service.maintenance import NodeMaintenance, with_drains
from procplan.service.node_state import (
    LiveNode,
    NodeSettings,
    by_gpu,
    end_of,
    ended_at,
    replaced_status,
)
from procplan.store.engine import Store
from procplan.store.history_repo import HistoryStore
from procplan.store.nodes_repo import AgentRegistration, NodeStatus, NodeStore, ReportWrite
from procplan.wire.node_status import foreign_of, processes_of, report_document

LOG = logging.getLogger("procplan.nodes")

STATUS_CACHE_S = 0.5


class NodeService:
    """See the module docstring."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        bookings: BookingService,
        jobs: JobService,
        settings: NodeSettings,
        events: EventBus | None = None,
    ) -> None:
        self.clock = clock
        self.bookings = bookings
        self.jobs = jobs
        self.settings = settings
        self.nodes = NodeStore(store)
        self.history = HistoryKeeper(HistoryStore(store), settings.retention)
        self.started = float(clock.now())
        self.events = events if events is not None else EventBus()
        self.maintenance = NodeMaintenance(store, clock, bookings, self.events)  # ADR 0020
        self._lock = threading.Lock()
        self._live: dict[str, LiveNode] = {}
        self._cache: tuple[float, dict[str, NodeStatus]] | None = None
        self._running: tuple[int, dict[str, list[Job]]] = (-2, {})
        self._writer: threading.Thread | None = None
        self._writer_stop = threading.Event()

    # ---- authentication --------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> None:
        """Accept the cluster token (or an embedded agent's); 401 otherwise."""
        token = ""
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        accepted = set(self.settings.local_tokens)
        if self.settings.agent_token:
            accepted.add(self.settings.agent_token)
        if token and any(hmac.compare_digest(token, good) for good in accepted):
            return
        raise Unauthorized(
            "agent token missing or wrong: start the agent with --token <the server's "
            "--agent-token>",
            code="unauthorized",
        )

    # ---- registration and heartbeats -------------------------------------------------------

    def down_after_s(self, interval_s: float) -> float:
        return self.settings.missed_heartbeats * interval_s

    def register(self, reg: Registration) -> Registered:
        now = self.clock.now()
        self._refuse_if_taken(reg, float(now))
        session = secrets.token_hex(16)
        node, warnings = self.nodes.register(
            AgentRegistration(
                node_id=reg.node_id,
                hostname=reg.hostname,
                address=reg.address,
                session=session,
                interval_s=reg.interval_s,
                devices=reg.devices,
                agent={**reg.agent, "interval_s": reg.interval_s},
            ),
            now,
        )
        self.bookings.topology()  # reloaded at once: submissions must see the node
        status = self.nodes.status(reg.node_id)
        if status is None:  # pragma: no cover - register just wrote it
            raise NotFound(f"Node '{reg.node_id}' vanished while registering")
        with self._lock:
            self._live[reg.node_id] = LiveNode(status)
            self._cache = None
        for warning in warnings:
            LOG.warning("node %s: %s", reg.node_id, warning)
        LOG.info("node %s registered (%d GPUs, %s)", reg.node_id, len(node.gpus), reg.hostname)
        self.events.publish(Event.NODES_CHANGED)
        return Registered(
            node_id=reg.node_id,
            session=session,
            interval_s=reg.interval_s,
            down_after_s=self.down_after_s(reg.interval_s),
            server_time=time.time(),
            gpus=tuple(node.gpus),
            warnings=tuple(warnings),
        )

    def _refuse_if_taken(self, reg: Registration, now: float) -> None:
        """Another live agent serves this node id: two agents must not both run its jobs."""
        current = self._live_status(reg.node_id)
        if current is None or not self.is_online(current, now):
            return
        same = current.hostname == reg.hostname and current.agent.get("pid") == reg.agent.get("pid")
        if not same:
            raise Conflict(
                f"node '{reg.node_id}' is already served by the agent on "
                f"{current.hostname} (pid {current.agent.get('pid')}), last heard "
                f"{now - current.last_seen:.1f} s ago: stop it or pick another --node-id",
                code="node_taken",
            )

    def heartbeat(self, node_id: str, report: Report) -> None:
        live = self._live_for(node_id, report.session)
        # A topology at most a second old: registrations refresh it in their own process.
        node = self.topology(max_age_s=1.0).node(node_id) or self.bookings.node(node_id)
        now = float(self.clock.now())
        booked = self.bookings.active_at([node.id], int(now))
        running = self.running_by_node().get(node.id, [])
        classified = classify(
            report.processes,
            uuid_index(node, report.readings),
            live.status.hostname,
            running,
            booked,
        )
        # Freed GPUs are free: an ended job's processes still tearing down are not foreign.
        seen = attributions((p.pid, p.kind, p.job_id) for p in processes_of(live.status.report))
        ended = self._ended_jobs(live, node, running, report, now)
        classified = settle_endings(classified, ended, now, live.status.interval_s, seen)
        foreign = foreign_gpus(classified)
        flags = self._flags(node, live, report.readings, classified, booked, now)
        self.history.fold(now, by_gpu(node, report.readings))
        previous = foreign_of(live.status.report)
        document = report_document(report, classified, foreign, flags)
        was_online = self.is_online(live.status, now)
        with self._lock:
            live.status = replaced_status(live.status, now, document)
            live.dirty = True
        if sorted(foreign) != previous or not was_online:
            self.events.publish(Event.NODES_CHANGED)  # the planner must see foreign GPUs

    def _ended_jobs(
        self, live: LiveNode, node: Node, running: list[Job], report: Report, now: float
    ) -> list[EndedJob]:
        """The jobs that ended on this node within ``MAX_ENDING_S``: those running at the
        node's previous heartbeat and no longer, and those the agent names (a process's
        ``job_id``) that are not running (looked up once)."""
        here = {gpu.id for gpu in node.gpus}
        held = {job.id: frozenset(g for g in job.gpu_ids if g in here) for job in running}
        for job_id, gpus in live.held.items():
            if job_id not in held and job_id not in live.ended:
                at = end_of(self.jobs.find(job_id), now)
                live.ended[job_id] = EndedJob(job_id, gpus, now if at is None else at)
        live.held = held
        named = {p.job_id for p in report.processes if p.job_id is not None}
        for job_id in named - held.keys() - live.ended.keys() - live.looked_up.keys():
            live.looked_up[job_id] = now
            job = self.jobs.find(job_id)
            at = end_of(job, now)
            if job is not None and at is not None and job.state is not JobState.RUNNING:
                gpus = frozenset(g for g in job.gpu_ids if g in here)
                live.ended[job_id] = EndedJob(job_id, gpus, at)
        for table in (live.ended, live.looked_up):
            for old in [j for j, e in table.items() if ended_at(e) + MAX_ENDING_S <= now]:
                del table[old]
        return list(live.ended.values())

    def check_session(self, node_id: str, session: str) -> NodeStatus:
        """The node's status when ``session`` is its agent's current one, else 409
        ``unknown_session`` (the agent registers again)."""
        return self._live_for(node_id, session).status

    def _live_for(self, node_id: str, session: str) -> LiveNode:
        live = self._live.get(node_id)
        if live is not None and live.status.session == session:
            return live
        status = self.nodes.status(node_id)  # registered through another server process?
        if status is None or status.session != session:
            raise Conflict(
                f"Unknown agent session for node '{node_id}': register again",
                code="unknown_session",
            )
        with self._lock:
            live = self._live[node_id] = LiveNode(status)
        return live

    def _flags(
        self,
        node: Node,
        live: LiveNode,
        readings: tuple[GpuReading, ...],
        classified: list[ClassifiedProcess],
        bookings_now: list[Booking],
        now: float,
    ) -> dict[str, list[str]]:
        """Per GPU: ``unbooked_use`` and ``idle_booking`` (booked, idle for a while)."""
        unbooked = unbooked_gpus(classified)
        busy = {c.gpu_id for c in classified}
        by_index = {r.index: r for r in readings if not r.mig}
        booked = {g for b in bookings_now for g in b.gpu_ids}
        idle_for = self.settings.idle_booking_minutes * 60
        flags: dict[str, list[str]] = {}
        for gpu in node.gpus:
            found: list[str] = []
            if gpu.id in unbooked:
                found.append(GpuFlag.UNBOOKED_USE.value)
            if is_idle(by_index.get(gpu.index), gpu.id in busy):
                since = live.idle_since.setdefault(gpu.id, now)
                if gpu.id in booked and now - since >= idle_for:
                    found.append(GpuFlag.IDLE_BOOKING.value)
            else:
                live.idle_since.pop(gpu.id, None)
            if found:
                flags[gpu.id] = found
        return flags

    # ---- what everyone reads ---------------------------------------------------------------

    def topology(self, max_age_s: float | None = None) -> Topology:
        """The current topology; with ``max_age_s``, one checked at most that long ago
        (``BookingService.recent_topology``)."""
        if max_age_s is None:
            return self.bookings.topology()
        return self.bookings.recent_topology(max_age_s)

    def running_by_node(self) -> dict[str, list[Job]]:
        """Running jobs by node id, recomputed only when the job queue changed."""
        _, running = self.jobs.active()
        version = self.jobs.active_version()
        cached, index = self._running
        if cached == version:
            return index
        fresh: dict[str, list[Job]] = {}
        for job in running:
            for node_id in job.node_ids:
                fresh.setdefault(node_id, []).append(job)
        self._running = (version, fresh)
        return fresh

    def is_online(self, status: NodeStatus, now: float) -> bool:
        """Heard from within ``missed_heartbeats`` intervals (by the server's clock). After
        a server start, nodes the database still calls online and not heard from since get
        ``restart_grace_s`` to report again (agents back off while the server is away), so a
        server restart loses no jobs."""
        down_after = self.down_after_s(status.interval_s)
        if now - status.last_seen < down_after:
            return True
        if not status.online or status.last_seen >= self.started:
            return False
        return now - self.started < max(down_after, self.settings.restart_grace_s)

    def statuses(self) -> dict[str, NodeStatus]:
        """Every node's status: the database's (re-read at most every ``STATUS_CACHE_S``),
        with this process's fresher reports laid over it."""
        return self._merged(self.stored_statuses())

    def _live_status(self, node_id: str) -> NodeStatus | None:
        """One node's freshest status (the database's, or this process's if newer)."""
        stored = self.nodes.status(node_id)
        if stored is None:
            return None
        return self._merged({node_id: stored})[node_id]

    def stored_statuses(self) -> dict[str, NodeStatus]:
        """The ``node_status`` rows, cached for ``STATUS_CACHE_S`` (registrations, offline
        marks and other processes' reports are what this misses meanwhile)."""
        cached = self._cache
        if cached is not None and time.monotonic() - cached[0] < STATUS_CACHE_S:
            return cached[1]
        stored = {s.node_id: s for s in self.nodes.statuses()}
        self._cache = (time.monotonic(), stored)
        return stored

    def _merged(self, stored: dict[str, NodeStatus]) -> dict[str, NodeStatus]:
        merged = dict(stored)
        with self._lock:
            for node_id, live in self._live.items():
                row = merged.get(node_id)
                if row is None or row.session != live.status.session:
                    continue  # replaced by a registration through another process
                if live.status.last_seen >= row.last_seen:
                    merged[node_id] = live.status
        return merged

    def planner_view(
        self, now: float
    ) -> tuple[dict[str, NodeState], frozenset[str], frozenset[str] | None]:
        """Node states (drained nodes ``draining``), foreign GPUs and the nodes that run batch
        jobs (those whose agent reports; ``None`` when ``batch_requires_agent`` is off)."""
        states: dict[str, NodeState] = {}
        foreign: set[str] = set()
        for node_id, status in self.statuses().items():
            online = self.is_online(status, now)
            states[node_id] = NodeState(up=online)
            if online:
                foreign.update(foreign_of(status.report))
        batch = None
        if self.settings.batch_requires_agent:
            batch = frozenset(node for node, state in states.items() if state.up)
        return with_drains(states, self.maintenance.drains()), frozenset(foreign), batch

    def remove(self, node_id: str) -> NodeRecord:
        """Retire the node (ADR 0020) and forget its agent's session here and in the store."""
        running = [job.id for job in self.running_by_node().get(node_id, [])]
        return self.maintenance.remove(node_id, running, self._forget)

    def _forget(self, node_id: str) -> None:
        self.nodes.forget(node_id)
        with self._lock:
            self._live.pop(node_id, None)
            self._cache = None

    # ---- the leader's housekeeping ---------------------------------------------------------

    def check_liveness(self) -> list[str]:
        """Mark nodes that stopped reporting offline and end their batch jobs, and batch jobs
        running on no node (leader only). Returns the nodes that went down."""
        now = float(self.clock.now())
        down = []
        for node_id, status in self.statuses().items():
            if not status.online or self.is_online(status, now):
                continue
            seen_before = now - self.down_after_s(status.interval_s)
            if self.nodes.mark_offline(node_id, status.session, seen_before, int(now)):
                down.append(node_id)
                self._lose_jobs(node_id, status.last_seen)
        if down:
            with self._lock:
                self._cache = None
            self.events.publish(Event.NODES_CHANGED)
        self._lose_nodeless()
        return down

    def _lose_nodeless(self) -> None:
        """Batch jobs running on no node: CPU-only jobs that a server before 0-GPU placement
        started "nowhere". No agent runs or ends them, so they would hold their tenant's job
        quota forever: lose them (requeued: the planner now gives them a node)."""
        _, running = self.jobs.active()
        nodeless = [job for job in running if not job.node_ids]
        for job in nodeless:
            if job.kind is JobKind.BATCH:
                LOG.warning("batch job %s runs on no node: ending it as lost", job.id)
        self._lose_batch(nodeless, "it was started on no node, so nothing ran it")

    def _lose_jobs(self, node_id: str, last_seen: float) -> None:
        ago = self.clock.now() - last_seen
        LOG.warning("node %s stopped reporting %.0f s ago: marking it offline", node_id, ago)
        why = f"node {node_id} stopped reporting (no heartbeat for {ago:.0f} s)"
        self._lose_batch(self.running_by_node().get(node_id, []), why)

    def _lose_batch(self, jobs: Iterable[Job], why: str) -> None:
        """End the batch jobs among ``jobs`` as lost (an interactive job's liveness is its
        lease, not its node)."""
        for job in jobs:
            if job.kind is not JobKind.BATCH:
                continue
            try:
                self.lose_job(job, why)
            except DomainError as exc:  # it ended meanwhile
                LOG.debug("job %s: %s", job.id, exc)

    def lose_job(self, job: Job, why: str) -> JobState:
        """End a batch job as ``lost`` and requeue it while ``requeue_lost`` allows (at most
        ``max_requeues`` times); returns the state it is left in."""
        self.jobs.finish(job.id, JobState.LOST, message=why)
        if self.settings.requeue_lost and job.requeues < self.settings.max_requeues:
            return self.jobs.requeue(job.id).state
        return JobState.LOST

    def flush(self, *, everything: bool = False) -> int:
        """Write the latest state of every node that reported since the last flush, and the
        closed minutes of history. Returns the node rows written."""
        with self._lock:
            dirty = [live for live in self._live.values() if live.dirty]
            for live in dirty:
                live.dirty = False
        writes = [
            ReportWrite(n.status.node_id, n.status.session, n.status.last_seen, n.status.report)
            for n in dirty
        ]
        written = self.nodes.write_reports(writes) if writes else 0
        self.history.flush(self.clock.now(), everything=everything)
        return written

    def maintain(self) -> None:
        """Hourly history roll-up and pruning (leader only; cheap when nothing is due)."""
        self.history.maintain(self.clock.now())

    def start_writer(self, every_s: float = 1.0) -> None:
        """Flush reports and history every ``every_s`` in a background thread."""
        if self._writer is not None:
            return
        self._writer_stop.clear()

        def loop() -> None:
            while not self._writer_stop.wait(every_s):
                try:
                    self.flush()
                except Exception:  # the database may be briefly unavailable: retry
                    LOG.exception("writing node reports failed")

        self._writer = threading.Thread(target=loop, name="procplan-node-writer", daemon=True)
        self._writer.start()

    def stop_writer(self) -> None:
        """Stop the writer and write what is left (history of the current minute too)."""
        self._writer_stop.set()
        if self._writer is not None:
            self._writer.join(5)
            self._writer = None
        try:
            self.flush(everything=True)
        except Exception:
            LOG.exception("writing node reports at shutdown failed")
