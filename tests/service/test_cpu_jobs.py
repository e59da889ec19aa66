"""Zero-GPU (CPU-only) jobs through the services: placed on a node whose agent runs them,
listed in that node's desired jobs, ended by the agent's exit event, lost with their node;
interactive ones end with their lease. Their tenant's job count comes back to 0 each time.

The "agent" is the test calling the services the agent routes call; the clock is fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from procplan.api.models.agents import EventsBody, RegistrationBody
from procplan.config import Settings
from procplan.core.jobs import Job, JobKind, JobRequest, JobState, Reason, Tenant
from procplan.core.node_reports import EventOutcome
from procplan.server import Composed, compose
from procplan.service.agent_jobs import AgentJobs
from procplan.store.job_writes import next_jobs_version
from procplan.store.logs_repo import LogStore
from procplan.store.tables import jobs as jobs_table
from procplan.testing import FakeClock
from procplan.wire.agents import job_specs

NODE = "gpu-01"


@pytest.fixture
def composed(sqlite_url: str, clock: FakeClock) -> Iterator[Composed]:
    settings = Settings(db_url=sqlite_url, demo=True, local_node="ws", batch_requires_agent=True)
    built = compose(settings, clock=clock)
    yield built
    built.store.dispose()


@pytest.fixture
def agent_jobs(composed: Composed) -> AgentJobs:
    return AgentJobs(composed.nodes, composed.jobs, composed.waiter, LogStore(composed.store))


def register(composed: Composed) -> str:
    devices = [{"index": 0, "uuid": "GPU-0", "name": "NVIDIA H100", "memory_mb": 81559}]
    body = RegistrationBody.model_validate(
        {"node_id": NODE, "hostname": "gpu-01.lab", "address": "10.0.0.5",
         "agent_version": "0.1.0", "interval_s": 2.0, "os_user": "root", "pid": 4242,
         "reader": "fake", "devices": devices}
    )  # fmt: skip
    return composed.nodes.register(body.registration()).session


def send(agent_jobs: AgentJobs, body: dict[str, Any]) -> list[EventOutcome]:
    """What the events route does with an agent's body."""
    ask = EventsBody.model_validate(body)
    return agent_jobs.events(NODE, ask.session, [e.event() for e in ask.events])


def submit(composed: Composed, **fields: Any) -> Job:
    fields.setdefault("user", "ada")
    return composed.jobs.submit(JobRequest(gpu_count=0, command=("true",), **fields))[0]


def cycle(composed: Composed, job: Job) -> Job:
    composed.scheduler.run_once()
    return composed.jobs.get(job.id)


def jobs_held(composed: Composed, tenant: str = "default") -> int:
    usage = composed.jobs.tenant_usage().get(tenant)
    return 0 if usage is None else usage.jobs


def exited(session: str, job: Job, code: int = 0, reason: str = "exited") -> dict[str, Any]:
    event = {"type": "exited", "job_id": job.id, "run": job.requeues, "exit_code": code,
             "signal": None, "at": 2.0, "reason": reason, "message": ""}  # fmt: skip
    return {"session": session, "events": [event]}


def test_a_cpu_batch_job_runs_where_an_agent_runs_it_and_ends_on_its_exit(
    composed: Composed, agent_jobs: AgentJobs
) -> None:
    job = submit(composed)
    waiting = cycle(composed, job)
    assert (waiting.state, waiting.reason) == (JobState.PENDING, Reason.NO_AGENT)
    assert jobs_held(composed) == 0

    session = register(composed)
    started = cycle(composed, job)
    assert started.state is JobState.RUNNING
    assert (started.node_ids, started.gpu_ids) == ((NODE,), ())
    assert jobs_held(composed) == 1
    specs = job_specs(agent_jobs.desired(NODE).runs)  # what the poll sends the agent
    assert [(s["id"], s["gpus"], s["nodes"]) for s in specs] == [(job.id, [], [NODE])]

    started_event = {"type": "started", "job_id": job.id, "run": 0, "pid": 4321, "at": 1.0}
    send(agent_jobs, {"session": session, "events": [started_event]})
    result = send(agent_jobs, exited(session, started))
    assert result[0].state == "completed"
    assert composed.jobs.get(job.id).state is JobState.COMPLETED
    assert jobs_held(composed) == 0
    assert agent_jobs.desired(NODE).runs == ()


def test_cpu_jobs_hold_the_tenants_job_quota_only_while_they_run(
    composed: Composed, agent_jobs: AgentJobs
) -> None:
    composed.jobs.tenants.create(Tenant("lab", max_jobs=1))
    session = register(composed)
    first, second = submit(composed, tenant="lab"), submit(composed, tenant="lab")
    composed.scheduler.run_once()
    assert composed.jobs.get(second.id).reason is Reason.QUOTA_JOBS
    assert jobs_held(composed, "lab") == 1
    send(agent_jobs, exited(session, composed.jobs.get(first.id), code=1))
    assert composed.jobs.get(first.id).state is JobState.FAILED
    assert cycle(composed, second).state is JobState.RUNNING
    send(agent_jobs, exited(session, composed.jobs.get(second.id)))
    assert jobs_held(composed, "lab") == 0


def test_a_cpu_job_is_lost_and_requeued_with_its_node(composed: Composed, clock: FakeClock) -> None:
    register(composed)
    job = submit(composed)
    assert cycle(composed, job).node_ids == (NODE,)
    clock.advance(60)
    composed.nodes.started = float(clock.now()) - 120  # past the server-start grace period
    requeued = cycle(composed, job)
    assert (requeued.state, requeued.requeues) == (JobState.PENDING, 1)
    assert requeued.reason is Reason.NO_AGENT
    assert jobs_held(composed) == 0


def test_an_unattached_interactive_cpu_job_ends_when_its_lease_lapses(
    composed: Composed, clock: FakeClock
) -> None:
    job = submit(composed, kind=JobKind.INTERACTIVE, host="a-laptop")
    running = cycle(composed, job)
    assert (running.state, running.node_ids) == (JobState.RUNNING, ())  # its client runs it
    assert jobs_held(composed) == 1
    clock.advance(composed.jobs.settings.lease_ttl_s + 1)
    ended = cycle(composed, job)
    assert ended.state is JobState.LOST and "lease expired" in ended.message
    assert jobs_held(composed) == 0


def test_an_interactive_cpu_job_is_attached_to_its_hosts_node(composed: Composed) -> None:
    register(composed)
    job = submit(composed, kind=JobKind.INTERACTIVE, host="gpu-01.lab")
    assert cycle(composed, job).node_ids == (NODE,)


def test_a_batch_job_left_running_on_no_node_is_lost_and_requeued(composed: Composed) -> None:
    """What a server before CPU-only placement left behind: "running" nowhere, forever."""
    job = submit(composed)
    with composed.store.write() as conn:
        version = next_jobs_version(conn)
        conn.execute(
            sa.update(jobs_table)
            .where(jobs_table.c.id == job.id)
            .values(state="running", started_at=composed.jobs.clock.now(), version=version)
        )
    assert composed.jobs.get(job.id).state is JobState.RUNNING
    requeued = cycle(composed, job)  # no agent: it waits for one, holding nothing
    assert (requeued.state, requeued.requeues, requeued.reason) == (
        JobState.PENDING,
        1,
        Reason.NO_AGENT,
    )
    assert jobs_held(composed) == 0
