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
from typing import Any

import orjson

from procplan.core.errors import Conflict, DomainError
from procplan.core.jobs import Job, JobKind, JobState
from procplan.core.model import Topology
from procplan.core.node_reports import AgentEvent
from procplan.service.jobs import JobService
from procplan.service.nodes import NodeService
from procplan.service.waiting import JobWaiter
from procplan.store.logs_repo import LogStore

LOG = logging.getLogger("procplan.agent_jobs")

MAX_WAIT_S = 60.0
MASTER_PORT_BASE = 29500


_EMPTY: tuple[str, list[dict[str, Any]]] = (
    hashlib.blake2b(b"[]", digest_size=12).hexdigest(),
    [],
)


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
        self._desired: tuple[object, dict[str, tuple[str, list[dict[str, Any]]]]] = (None, {})
        self._generation = -1

    # ---- desired state ---------------------------------------------------------------------

    def desired(self, node_id: str) -> tuple[str, list[dict[str, Any]]]:
        """``(digest, job specs)`` of the batch jobs that should run on ``node_id``.

        Hundreds of agents' polls wake on every change of the job queue; the first one
        computes every node's list, the others reuse it until the next change (every commit
        is followed by ``JobWaiter.notify``, which moves ``generation``)."""
        generation = self.waiter.generation
        if self._generation == generation:
            return self._desired[1].get(node_id, _EMPTY)
        running = self.nodes.running_by_node()
        # A topology up to a second old (hundreds of polls wake together): a node that is
        # newer than that reloads it, since a spec needs the GPUs' PCI indices.
        cache = self.nodes.bookings.topology_cache
        topology = cache.recent()
        if any(topology.node(node) is None for node in running):
            topology = cache.current()
        addresses = {n: s.address for n, s in self.nodes.stored_statuses().items()}
        key = (self.jobs.jobs.mirror.version, topology, tuple(sorted(addresses.items())))
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
    ) -> dict[str, Any]:
        """The node's desired jobs once their digest differs from ``version`` (at once when
        it already does), else the unchanged list after ``wait_s``."""
        self.nodes.check_session(node_id, session)

        def changed() -> tuple[str, list[dict[str, Any]]] | None:
            digest, specs = self.desired(node_id)
            return (digest, specs) if digest != version else None

        found = await self.waiter.wait_until(changed, min(max(wait_s, 0.0), MAX_WAIT_S))
        digest, specs = found if found is not None else self.desired(node_id)
        return {"version": digest, "jobs": specs}

    # ---- events ----------------------------------------------------------------------------

    def events(self, node_id: str, session: str, events: Sequence[AgentEvent]) -> dict[str, Any]:
        status = self.nodes.check_session(node_id, session)
        results = [self._event(node_id, status.hostname, event) for event in events]
        return {"results": results}

    def _event(self, node_id: str, hostname: str, event: AgentEvent) -> dict[str, Any]:
        result: dict[str, Any] = {"job_id": event.job_id, "run": event.run, "type": event.type}
        try:
            job = self.jobs.jobs.get(event.job_id)
            if job is None or not _current_run(job, node_id, event.run):
                result["state"] = "ignored"
            elif event.type == "started":
                assert event.pid is not None
                self.jobs.record_launch(event.job_id, event.run, event.pid, hostname, event.at)
                result["state"] = JobState.RUNNING.value
            else:
                result["state"] = self._ended(job, event).value
        except DomainError as exc:  # it ended meanwhile: the event has nothing left to do
            result["state"], result["message"] = "ignored", exc.message
        return result

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

    def ship_log(
        self, node_id: str, job_id: int, run: int, stream: str, offset: int, data: bytes
    ) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if node_id not in job.node_ids and job.requeues == run and job.state is JobState.RUNNING:
            raise Conflict(f"Job {job_id} does not run on node '{node_id}'", code="wrong_node")
        cap = self.nodes.settings.log_max_mb * 1024 * 1024
        size, truncated = self.logs.append(
            job_id, run, stream, offset, data, cap, self.jobs.clock.now()
        )
        return {"size": size, "truncated": truncated}


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
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    result: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for node_id, jobs in running.items():
        specs = [
            _spec(job, node_id, topology, addresses, grace_s)
            for job in sorted(jobs, key=lambda j: j.id)
            if job.kind is JobKind.BATCH
        ]
        result[node_id] = (_digest(specs), specs)
    return result


def _spec(
    job: Job, node_id: str, topology: Topology, addresses: Mapping[str, str], grace_s: int
) -> dict[str, Any]:
    node = topology.node(node_id)
    gpus = [g for g in node.gpus if g.id in job.gpu_ids] if node is not None else []
    first = job.node_ids[0] if job.node_ids else node_id
    return {
        "id": job.id,
        "run": job.requeues,
        "user": job.user,
        "name": job.name,
        "command": list(job.command),
        "workdir": job.workdir,
        "env": [list(pair) for pair in job.env],
        "gpus": [{"id": g.id, "index": g.index, "uuid": g.uuid} for g in gpus],
        "nodes": list(job.node_ids),
        "node_rank": job.node_ids.index(node_id) if node_id in job.node_ids else 0,
        "master_addr": addresses.get(first, first),
        "master_port": master_port(job.id),
        "started_at": job.started_at,
        "deadline": None
        if job.time_limit_s is None or job.started_at is None
        else job.started_at + job.time_limit_s,
        "grace_s": grace_s,
        "stdout_path": job.stdout_path,
        "stderr_path": job.stderr_path,
        "array_id": job.array_id,
        "array_index": job.array_index,
        "stop": None
        if job.preempt_at is None
        else {"reason": job.message or "preempted", "at": job.preempt_at},
        "launched": None if job.pid is None else {"pid": job.pid, "host": job.host},
    }


def _digest(specs: list[dict[str, Any]]) -> str:
    return hashlib.blake2b(orjson.dumps(specs), digest_size=12).hexdigest()
