"""The batch jobs each node should run, and what agents tell us about them (ADR 0006 §2, §7).

The desired list of every node is computed once per change of the job queue (one pass over
the running jobs) with a digest per node; a node's long poll answers only when its digest
differs from the one its agent holds. Agent events (a run started, a run exited) are
idempotent: an event about a run that is no longer current is acknowledged and ignored.
"""

from __future__ import annotations

import hashlib
import logging
import signal
from collections.abc import Mapping, Sequence

import orjson

from procplan.core.errors import Conflict, DomainError
from procplan.core.jobs import Job, JobKind, JobState
from procplan.core.model import Topology
from procplan.core.node_reports import (
    AgentEvent,
    DesiredJobs,
    DesiredRun,
    EventOutcome,
    LogShipped,
)
from procplan.service.jobs import JobService
from procplan.service.nodes import NodeService
from procplan.service.waiting import JobWaiter
from procplan.store.logs_repo import LogStore
from procplan.wire.agents import job_specs

LOG = logging.getLogger("procplan.agent_jobs")

MAX_WAIT_S = 60.0
MASTER_PORT_BASE = 29500


_EMPTY = DesiredJobs(hashlib.blake2b(b"[]", digest_size=12).hexdigest(), ())


def master_port(job_id: int) -> int:
    return MASTER_PORT_BASE + job_id % 1000


class AgentJobs:
    """Desired jobs per node, the long poll, job events and log shipping."""

    def __init__(
        self, nodes: NodeService, jobs: JobService, waiter: JobWaiter, logs: LogStore
    ) -> None:
        self.nodes = nodes
        self.jobs = jobs
        self.waiter = waiter
        self.logs = logs
        self._desired: tuple[object, dict[str, DesiredJobs]] = (None, {})
        self._generation = -1

    # ---- desired state ---------------------------------------------------------------------

    def desired(self, node_id: str) -> DesiredJobs:
        """The batch job runs that should run on ``node_id``, with their digest.

        Hundreds of agents' polls wake on every change of the job queue; the first one
        computes every node's list, the others reuse it until the next change (every commit
        is followed by ``JobWaiter.notify``, which moves ``generation``)."""
        generation = self.waiter.generation
        if self._generation == generation:
            return self._desired[1].get(node_id, _EMPTY)
        running = self.nodes.running_by_node()
        # A topology up to a second old (hundreds of polls wake together): a node that is
        # newer than that reloads it, since a spec needs the GPUs' PCI indices.
        topology = self.nodes.topology(max_age_s=1.0)
        if any(topology.node(node) is None for node in running):
            topology = self.nodes.topology()
        addresses = {n: s.address for n, s in self.nodes.stored_statuses().items()}
        key = (self.jobs.active_version(), topology, tuple(sorted(addresses.items())))
        cached_key, by_node = self._desired
        if cached_key != key:
            by_node = _all_desired(running, topology, addresses, self._grace_s())
            self._desired = (key, by_node)
        self._generation = generation
        return by_node.get(node_id, _EMPTY)

    def _grace_s(self) -> int:
        return max(self.jobs.settings.policy.preempt_grace_s, 1)

    async def poll(
        self, node_id: str, session: str, version: str | None, wait_s: float
    ) -> DesiredJobs:
        """The node's desired jobs once their digest differs from ``version`` (at once when
        it already does), else the unchanged list after ``wait_s``."""
        self.nodes.check_session(node_id, session)

        def changed() -> DesiredJobs | None:
            desired = self.desired(node_id)
            return desired if desired.version != version else None

        found = await self.waiter.wait_until(changed, min(max(wait_s, 0.0), MAX_WAIT_S))
        return found if found is not None else self.desired(node_id)

    # ---- events ----------------------------------------------------------------------------

    def events(
        self, node_id: str, session: str, events: Sequence[AgentEvent]
    ) -> list[EventOutcome]:
        status = self.nodes.check_session(node_id, session)
        return [self._event(node_id, status.hostname, event) for event in events]

    def _event(self, node_id: str, hostname: str, event: AgentEvent) -> EventOutcome:
        def outcome(state: str, message: str | None = None) -> EventOutcome:
            return EventOutcome(event.job_id, event.run, event.type, state, message)

        try:
            job = self.jobs.find(event.job_id)
            if job is None or not _current_run(job, node_id, event.run):
                return outcome("ignored")
            if event.type == "started":
                assert event.pid is not None
                self.jobs.record_launch(event.job_id, event.run, event.pid, hostname, event.at)
                return outcome(JobState.RUNNING.value)
            return outcome(self._ended(job, event).value)
        except DomainError as exc:  # it ended meanwhile: the event has nothing left to do
            return outcome("ignored", exc.message)

    def _ended(self, job: Job, event: AgentEvent) -> JobState:
        """Map an agent's exit report to the job's end (ADR 0006, "Events")."""
        if job.preempt_at is not None:
            ended = self.jobs.finish(job.id, JobState.PREEMPTED, event.exit_code, job.message)
            self.jobs.requeue(job.id)
            return ended.state
        if event.reason == "lost":
            why = event.message or "the node's agent lost track of the process"
            return self.nodes.lose_job(job, why)
        if event.exit_code == 0 and event.reason == "exited":
            return self.jobs.finish(job.id, JobState.COMPLETED, 0).state
        return self.jobs.finish(job.id, JobState.FAILED, event.exit_code, _why(job, event)).state

    # ---- logs ------------------------------------------------------------------------------

    def read_log(
        self,
        job_id: int,
        stream: str,
        offset: int,
        limit: int,
        run: int | None = None,
        rank: int = 0,
    ) -> tuple[bytes, int, bool, int | None]:
        """Up to ``limit`` bytes of a job's stored ``stream`` (of node ``rank``) from
        ``offset``, the stored size, the truncation flag and the run read (``LogStore.read``)."""
        return self.logs.read(job_id, stream, offset, limit, run, rank)

    def ship_log(
        self,
        node_id: str,
        job_id: int,
        run: int,
        stream: str,
        offset: int,
        data: bytes,
        rank: int = 0,
    ) -> LogShipped:
        job = self.jobs.get(job_id)
        if node_id not in job.node_ids and job.requeues == run and job.state is JobState.RUNNING:
            raise Conflict(f"Job {job_id} does not run on node '{node_id}'", code="wrong_node")
        cap = self.nodes.settings.log_max_mb * 1024 * 1024
        size, truncated = self.logs.append(
            job_id, run, stream, offset, data, cap, self.jobs.clock.now(), rank
        )
        return LogShipped(size, truncated)


def _current_run(job: Job, node_id: str, run: int) -> bool:
    return (
        job.kind is JobKind.BATCH
        and job.state is JobState.RUNNING
        and job.requeues == run
        and node_id in job.node_ids
    )


def _why(job: Job, event: AgentEvent) -> str:
    if event.reason == "launch_failed":
        return f"could not start: {event.message}" if event.message else "could not start"
    if event.reason == "time_limit":
        return f"time limit ({job.time_limit_s} s) reached"
    if event.reason == "stopped":
        return job.message or "stopped by the scheduler"
    if event.signal is not None:
        try:
            name = signal.Signals(event.signal).name
        except ValueError:
            name = f"signal {event.signal}"
        return f"killed by {name}"
    if event.exit_code is None:
        return event.message or "ended; exit status unknown"
    return f"exited with code {event.exit_code}"


def _all_desired(
    running: Mapping[str, Sequence[Job]],
    topology: Topology,
    addresses: Mapping[str, str],
    grace_s: int,
) -> dict[str, DesiredJobs]:
    result: dict[str, DesiredJobs] = {}
    for node_id, jobs in running.items():
        runs = tuple(
            _run(job, node_id, topology, addresses, grace_s)
            for job in sorted(jobs, key=lambda j: j.id)
            if job.kind is JobKind.BATCH
        )
        result[node_id] = DesiredJobs(_digest(runs), runs)
    return result


def _run(
    job: Job, node_id: str, topology: Topology, addresses: Mapping[str, str], grace_s: int
) -> DesiredRun:
    node = topology.node(node_id)
    gpus = tuple(g for g in node.gpus if g.id in job.gpu_ids) if node is not None else ()
    first = job.node_ids[0] if job.node_ids else node_id
    return DesiredRun(
        job=job,
        gpus=gpus,
        node_rank=job.node_ids.index(node_id) if node_id in job.node_ids else 0,
        master_addr=addresses.get(first, first),
        master_port=master_port(job.id),
        deadline=None
        if job.time_limit_s is None or job.started_at is None
        else job.started_at + job.time_limit_s,
        grace_s=grace_s,
    )


def _digest(runs: Sequence[DesiredRun]) -> str:
    """The digest of the specs as the agent receives them, so it moves exactly when they
    change."""
    return hashlib.blake2b(orjson.dumps(job_specs(runs)), digest_size=12).hexdigest()
