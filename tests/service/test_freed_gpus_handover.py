"""Freed GPUs are free (issue #19): the hand-over race, in-process.

A job ends; its process still shows on one of its GPUs in the next heartbeat (the reading was
taken while CUDA tore it down). Before the fix that GPU read as foreign for one interval, and
a lower-ranked job took the other GPU, ahead of the first job in line. The node's agent side
here is a ``FakeGpuReader`` and the agent's own ``OwnProcesses``; the server side is the real
one (API, node service, planner) on a fixed clock.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from starlette.testclient import TestClient

from procplan.agent.host import OwnProcesses
from procplan.agent.protocol import Key, RunningJob
from procplan.server import Composed
from procplan.testing import FakeClock, FakeGpuReader

TOKEN = "handover-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
COMPOSE_SETTINGS = {"agent_token": TOKEN}  # the root conftest's ``composed``
ALICE = {"X-ProcPlan-User": "alice"}
NODE = "gpu-01"
INTERVAL = 2.0
LEADER, WORKER = 120, 121  # the job's launched process and its CUDA process on GPU 0


class Agent:
    """Speaks the agent protocol for ``NODE`` from a fake reader and a fake process table."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.reader = FakeGpuReader(2, host=NODE)
        self.table: dict[int, int] = {}  # PID → session id (gone: not in it)
        self.own = OwnProcesses(session_of=self.table.get, ancestors_of=lambda pid: [])
        devices = [dataclasses.asdict(d) for d in self.reader.devices()]
        body = {"node_id": NODE, "hostname": "gpu-01.lab", "address": "10.0.0.5",
                "agent_version": "0.1.0", "interval_s": INTERVAL, "os_user": "root",
                "pid": 4242, "reader": "fake", "devices": devices}  # fmt: skip
        answer = client.post("/api/v1/agents/register", json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text
        self.session = answer.json()["session"]

    def heartbeat(
        self,
        sessions: dict[int, Key],
        running: tuple[RunningJob, ...],
        ending: tuple[Key, ...] = (),
        *,
        tagged: bool = True,
    ) -> None:
        rows = self.own.rows(self.reader.processes(), sessions, running, ending)
        if not tagged:  # an agent that does not know its processes (before issue #19)
            rows = [{**row, "job_id": None, "ending": False} for row in rows]
        body = {"session": self.session,
                "readings": [dataclasses.asdict(r) for r in self.reader.readings()],
                "processes": rows, "read_error": None,
                "jobs": [{"id": j.id, "run": j.run, "pid": j.pid} for j in running]}  # fmt: skip
        answer = self.client.post(f"/api/v1/agents/{NODE}/heartbeat", json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text

    def event(self, **fields: Any) -> None:
        body = {"session": self.session, "events": [{"run": 0, "at": 1.0, **fields}]}
        answer = self.client.post(f"/api/v1/agents/{NODE}/events", json=body, headers=AUTH)
        assert answer.status_code == 200, answer.text


def submit(client: TestClient, gpus: int) -> int:
    body = {"command": ["python", "train.py"], "node_id": NODE, "gpu_count": gpus}
    response = client.post("/api/v1/jobs", json=body, headers=ALICE)
    assert response.status_code == 201, response.text
    return int(response.json()["job_id"])


def job(client: TestClient, job_id: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
    return body


def gpu0(client: TestClient) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"/api/v1/nodes/{NODE}").json()["gpus"][0]
    return body


def a_job_ending_with_a_lingering_process(
    client: TestClient, composed: Composed, clock: FakeClock
) -> tuple[Agent, int, int, int]:
    """Job A runs on both GPUs; P (2 GPUs, first in line) and Q (1 GPU, after it) wait; A
    ends, and its CUDA process still shows on GPU 0. Returns the agent and A, P, Q."""
    agent = Agent(client)
    agent.heartbeat({}, ())
    first = submit(client, 2)
    composed.scheduler.run_once()
    assert job(client, first)["allocated_gpus"] == ["gpu-01-gpu0", "gpu-01-gpu1"]
    agent.event(type="started", job_id=first, pid=LEADER)
    agent.table.update({LEADER: LEADER, WORKER: LEADER})
    agent.reader.add_process(0, WORKER, 30_000, "alice", "python train.py")
    key = (first, 0)
    clock.advance(2)
    agent.heartbeat({LEADER: key}, (RunningJob(first, 0, LEADER),))
    assert gpu0(client)["processes"][0]["kind"] == "job"
    ahead, behind = submit(client, 2), submit(client, 1)
    composed.scheduler.run_once()
    assert (job(client, ahead)["state"], job(client, behind)["state"]) == ("pending", "pending")
    clock.advance(1)
    agent.event(type="exited", job_id=first, exit_code=0, reason="exited")
    assert job(client, first)["state"] == "completed"
    agent.table.clear()  # the processes left the process table; the driver lists WORKER still
    return agent, first, ahead, behind


@pytest.mark.parametrize("tagged", [True, False], ids=["agent-knows", "server-remembers"])
def test_the_first_job_in_line_gets_the_freed_gpus(
    client: TestClient, composed: Composed, clock: FakeClock, tagged: bool
) -> None:
    agent, first, ahead, behind = a_job_ending_with_a_lingering_process(client, composed, clock)
    clock.advance(1)  # the next heartbeat, within one interval of the end
    agent.heartbeat({}, (), ((first, 0),), tagged=tagged)
    seen = gpu0(client)
    assert seen["foreign"] is False and seen["flags"] == []
    assert [(p["pid"], p["kind"], p["job_id"]) for p in seen["processes"]] == [
        (WORKER, "ending", first)
    ]
    composed.scheduler.run_once()
    assert job(client, ahead)["state"] == "running"
    assert job(client, ahead)["allocated_gpus"] == ["gpu-01-gpu0", "gpu-01-gpu1"]
    assert job(client, behind)["state"] == "pending"  # it did not jump ahead


def test_a_process_still_there_a_full_interval_after_the_end_is_foreign(
    client: TestClient, composed: Composed, clock: FakeClock
) -> None:
    """The control: the rule waits one reading, no longer. Past it, the leftover (which the
    agent no longer calls ending) blocks its GPU, and the 1-GPU job takes the other one."""
    agent, _first, ahead, behind = a_job_ending_with_a_lingering_process(client, composed, clock)
    clock.advance(int(INTERVAL) + 1)
    agent.heartbeat({}, (), (), tagged=False)
    seen = gpu0(client)
    assert seen["foreign"] is True and seen["flags"] == ["unbooked_use"]
    assert seen["processes"][0]["kind"] == "unbooked"
    composed.scheduler.run_once()
    assert job(client, ahead)["state"] == "pending"
    assert job(client, behind)["allocated_gpus"] == ["gpu-01-gpu1"]
