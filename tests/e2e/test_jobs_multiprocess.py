"""Two server processes on one SQLite file: one cycle for both, no GPU handed out twice.

Clients submit through both servers and release through the other one; the server that does
not hold the cycle lock must still see its submissions start (the leader probes the committed
version counters), and at no moment may two running jobs share a GPU.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from procplan.testing import ServerProcess

pytestmark = pytest.mark.slow

JOBS = 24


def submit(url: str, i: int) -> str:
    reply = httpx.post(
        f"{url}/api/v1/jobs",
        headers={"X-ProcPlan-User": f"user{i % 3}"},
        json={"kind": "batch", "gpu_count": 1 + i % 3, "time_limit_s": 600, "command": ["true"]},
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["job_id"])


def running(url: str) -> list[dict[str, object]]:
    reply = httpx.get(f"{url}/api/v1/jobs?state=running&limit=1000")
    assert reply.status_code == 200, reply.text
    return reply.json()["jobs"]  # type: ignore[no-any-return]


def test_two_servers_share_one_queue_without_double_allocation(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    args = ["--demo", "--database", db]
    # No embedded agents: the jobs here are released by the test, not run.
    env = {"PROCPLAN_LOCAL_AGENT": "off", "PROCPLAN_BATCH_REQUIRES_AGENT": "false"}
    with ServerProcess(args, env) as first, ServerProcess(args, env) as second:
        urls = [first.url, second.url]
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda i: submit(urls[i % 2], i), range(JOBS)))
        done: set[str] = set()
        deadline = time.monotonic() + 90
        while len(done) < JOBS and time.monotonic() < deadline:
            now_running = running(urls[len(done) % 2])
            held = [gpu for job in now_running for gpu in job["allocated_gpus"]]  # type: ignore[union-attr]
            assert len(held) == len(set(held)), f"a GPU is held twice: {sorted(held)}"
            for job in now_running:
                ident = str(job["id"])
                other = urls[(int(ident) + 1) % 2]  # release through either server
                reply = httpx.post(f"{other}/api/v1/jobs/{ident}/release", json={"exit_code": 0})
                assert reply.status_code == 200, reply.text
                done.add(ident)
            time.sleep(0.05)
        assert done == set(ids)
        states = {
            j["state"] for j in httpx.get(f"{first.url}/api/v1/jobs?limit=1000").json()["jobs"]
        }
        assert states == {"completed"}
