"""Job queue over HTTP: start latency, hand-over, submit throughput, a 1,000-job array.

Starts a real server (``procplan server --demo``: this host is simulated with 8 GPUs) on a
fresh SQLite file and measures what a client sees:

- **start latency**: POST an interactive job while GPUs are free, then long-poll ``/wait``
  until it is running; the time from the POST to the answer that shows the allocation.
- **hand-over**: all 8 GPUs busy and one job waiting; a running job is released; the time
  from the release call until the waiting job's long-poll returns it running.
- **submit throughput**: ``--clients`` concurrent clients POST batch jobs for ``--seconds``
  (the cluster is full, so every submission also costs the cycle a replan).
- **array**: one POST of a 1,000-task array, until the 201.

local-gpu-scheduler, the peer, polls ``nvidia-smi`` once a second, so its start latency is up
to 1 s by construction; it needs real GPUs and is not run here.

Prints a final ``SUMMARY`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rawhttp import RawHttp
from _servers import client_headers, machine, percentile, process_cpu
from procplan.testing import ServerProcess

NODE = socket.gethostname()
HEADERS = {"X-ProcPlan-User": "bench"}


def interactive(gpus: int = 1) -> dict[str, object]:
    return {
        "kind": "interactive",
        "gpu_count": gpus,
        "node_id": NODE,
        "time_limit_s": 3600,
        "name": "bench",
    }


async def submit(http: RawHttp, body: dict[str, object]) -> dict[str, object]:
    status, reply = await http.request("POST", "/api/v1/jobs", body)
    if status != 201:
        raise RuntimeError(f"submit failed: {status} {reply}")
    return reply["job"]  # type: ignore[index, return-value]


async def wait_running(http: RawHttp, job: dict[str, object]) -> dict[str, object]:
    """Long-poll until the job leaves ``pending``."""
    while job["state"] == "pending":
        path = f"/api/v1/jobs/{job['id']}/wait?timeout=30&version={job['version']}"
        status, reply = await http.request("GET", path)
        if status != 200:
            raise RuntimeError(f"wait failed: {status} {reply}")
        job = reply  # type: ignore[assignment]
    return job


async def release(http: RawHttp, job_id: object) -> None:
    status, reply = await http.request("POST", f"/api/v1/jobs/{job_id}/release", {"exit_code": 0})
    if status != 200:
        raise RuntimeError(f"release failed: {status} {reply}")


async def start_latency(url: str, rounds: int) -> list[float]:
    samples = []
    async with RawHttp(url, HEADERS) as http:
        for _ in range(rounds):
            began = time.perf_counter()
            job = await wait_running(http, await submit(http, interactive()))
            samples.append(time.perf_counter() - began)
            assert job["state"] == "running", job
            await release(http, job["id"])
    return samples


async def hand_over_once(url: str) -> float:
    async with RawHttp(url, HEADERS) as http, RawHttp(url, HEADERS) as waiter_http:
        running = [await wait_running(http, await submit(http, interactive())) for _ in range(8)]
        queued = await submit(http, interactive())
        waiting = asyncio.create_task(wait_running(waiter_http, queued))
        await asyncio.sleep(0.05)  # the waiter is parked on the server
        began = time.perf_counter()
        await release(http, running[0]["id"])
        started = await waiting
        elapsed = time.perf_counter() - began
        assert started["state"] == "running", started
        for job in [*running[1:], started]:
            await release(http, job["id"])
    return elapsed


async def submit_load(url: str, clients: int, seconds: float, auth: str) -> tuple[int, list[float]]:
    latencies: list[float] = []
    accepted = 0
    users = [f"load{i}" for i in range(clients)]
    by_user = client_headers(url, users, auth)
    deadline = time.perf_counter() + seconds

    async def one_client(i: int) -> None:
        nonlocal accepted
        body = {"kind": "batch", "gpu_count": 1 + i % 4, "command": ["true"], "name": f"c{i}"}
        async with RawHttp(url, by_user[users[i]]) as http:
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                status, _ = await http.request("POST", "/api/v1/jobs", body, decode=False)
                latencies.append(time.perf_counter() - began)
                accepted += status == 201

    await asyncio.gather(*(one_client(i) for i in range(clients)))
    return accepted, latencies


async def array_submit(url: str, size: int) -> float:
    async with RawHttp(url, HEADERS) as http:
        began = time.perf_counter()
        status, reply = await http.request(
            "POST",
            "/api/v1/jobs",
            {"kind": "batch", "command": ["true"], "array": f"0-{size - 1}", "name": "arr"},
        )
        elapsed = time.perf_counter() - began
        if status != 201 or len(reply["job_ids"]) != size:  # type: ignore[index]
            raise RuntimeError(f"array submit failed: {status}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="start-latency samples")
    parser.add_argument("--handovers", type=int, default=30)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--array", type=int, default=1000)
    parser.add_argument(
        "--auth",
        choices=("peer", "token"),
        default="peer",
        help="how submitters prove who they are",
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="procplan-jobs-"))
    # The queue alone: no agents run the batch jobs (they hold their GPUs until released).
    no_agents = {"PROCPLAN_LOCAL_AGENT": "off", "PROCPLAN_BATCH_REQUIRES_AGENT": "false"}
    server = ServerProcess(["--demo", "--database", str(workdir / "jobs.db")], no_agents)
    with server:
        starts = asyncio.run(start_latency(server.url, args.rounds))
        handovers = [asyncio.run(hand_over_once(server.url)) for _ in range(args.handovers)]
        array_s = asyncio.run(array_submit(server.url, args.array))
        cpu_before = process_cpu(server.pid)
        accepted, submit_lat = asyncio.run(
            submit_load(server.url, args.clients, args.seconds, args.auth)
        )
        server_cpu = process_cpu(server.pid) - cpu_before
    print(f"machine: {machine()}")
    print(
        f"SUMMARY auth={args.auth} start_p50_ms={percentile(starts, 0.5) * 1000:.1f} "
        f"start_p99_ms={percentile(starts, 0.99) * 1000:.1f} "
        f"handover_p50_ms={percentile(handovers, 0.5) * 1000:.1f} "
        f"handover_p99_ms={percentile(handovers, 0.99) * 1000:.1f} "
        f"submits_per_s={accepted / args.seconds:.0f} "
        f"submit_p50_ms={percentile(submit_lat, 0.5) * 1000:.1f} "
        f"submit_p99_ms={percentile(submit_lat, 0.99) * 1000:.1f} "
        f"array{args.array}_s={array_s:.2f} "
        f"server_cpu_ms_per_submit={server_cpu * 1000 / max(accepted, 1):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
