"""Issue #4 benchmark: many agents reporting to one server.

``N`` simulated agents (default 300, each a ``FakeGpuReader`` with 8 GPUs) register with a real
``procplan server`` and send a heartbeat every ``interval`` seconds (default 2), spread evenly
over the interval, each with its readings and a couple of GPU processes. Each also keeps the
desired-jobs long poll open, as a real agent does. The load runs in this process (asyncio,
two raw HTTP/1.1 keep-alive connections per agent, ``_rawhttp``: httpx would cost the client
more CPU than the server it measures on a 2-core machine); the server is a separate process
whose CPU time is read from ``/proc`` over the measured window.

Reported: server CPU as a share of one core, heartbeat latency p50/p99 (client-side, request
sent → response read), and the history rows written per minute (``gpu_history``).

Targets (issue #4): server CPU < 50 % of one core, heartbeat p99 < 50 ms.

Usage: ``python bench/agents.py [--agents 300] [--seconds 60] [--interval 2]``
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _profile import flame_graph
from _rawhttp import RawHttp
from _servers import empty_loop_ms, machine, percentile
from procplan.testing import FakeGpuReader, ServerProcess

TOKEN = "bench-token"
SLOW: list[tuple[float, float]] = []  # (sent at, latency) of every measured heartbeat
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def registration(i: int, reader: FakeGpuReader, interval: float) -> dict[str, Any]:
    return {
        "node_id": f"sim{i:03d}",
        "hostname": f"sim{i:03d}.bench",
        "address": f"10.1.{i // 250}.{i % 250 + 1}",
        "agent_version": "bench",
        "interval_s": interval,
        "os_user": "root",
        "pid": 100_000 + i,
        "reader": "fake",
        "devices": [
            {"index": d.index, "uuid": d.uuid, "name": d.name, "memory_mb": d.memory_mb}
            for d in reader.devices()
        ],
    }


def report(session: str, reader: FakeGpuReader, tick: int) -> dict[str, Any]:
    readings = []
    for r in reader.readings():
        util = float((tick * 7 + r.index * 13) % 100)
        readings.append(
            {"index": r.index, "uuid": r.uuid, "utilization_pct": util,
             "memory_used_mb": int(util * 800), "memory_total_mb": r.memory_total_mb,
             "temperature_c": 30 + util / 3, "power_w": 60 + util * 3, "mig": False}
        )  # fmt: skip
    processes = [
        {"gpu_uuid": readings[g]["uuid"], "pid": 5000 + g, "used_memory_mb": 1000,
         "user": "user", "command": "python train.py", "job_id": None, "ancestors": [1]}
        for g in (0, 1)
    ]  # fmt: skip
    return {
        "session": session,
        "readings": readings,
        "processes": processes,
        "jobs": [],
        "read_error": None,
    }


async def one_agent(
    url: str, i: int, n: int, interval: float, window: list[float],
    latencies: list[float], registered: list[float],
) -> None:  # fmt: skip
    reader = FakeGpuReader(8, host=f"sim{i:03d}")
    node = f"sim{i:03d}"
    async with RawHttp(url, AUTH) as http, RawHttp(url, AUTH) as poll_http:
        status, body = await http.request(
            "POST", "/api/v1/agents/register", registration(i, reader, interval)
        )
        assert status == 200, body
        session = body["session"]  # type: ignore[index]
        registered.append(time.monotonic())
        poller = asyncio.create_task(long_poll(poll_http, node, session, window))
        await asyncio.sleep(interval * i / n)
        tick = 0
        next_at = time.monotonic()
        while next_at < window[1]:
            began = time.monotonic()
            body = report(session, reader, tick)
            status, answer = await http.request("POST", f"/api/v1/agents/{node}/heartbeat", body)
            elapsed = time.monotonic() - began
            assert status == 200, answer
            if window[0] <= began < window[1]:
                latencies.append(elapsed)
                SLOW.append((began, elapsed))
            tick += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        poller.cancel()


async def long_poll(http: RawHttp, node: str, session: str, window: list[float]) -> None:
    version = ""
    while time.monotonic() < window[1]:
        query = f"session={session}&wait=25" + (f"&version={version}" if version else "")
        status, body = await http.request("GET", f"/api/v1/agents/{node}/jobs?{query}")
        assert status == 200, body
        version = body["version"]  # type: ignore[index]


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def run_load(
    server: ServerProcess,
    n: int,
    seconds: float,
    interval: float,
    show_slowest: int = 0,
    profile: Path | None = None,
) -> dict[str, float]:
    """Register all agents (timed), let them settle for two intervals, then measure."""
    start = time.monotonic()
    latencies: list[float] = []
    registered: list[float] = []
    far = start + 10_000
    window = [far, far]  # measure_from, until: set once everyone registered
    tasks = [
        asyncio.create_task(one_agent(server.url, i, n, interval, window, latencies, registered))
        for i in range(n)
    ]
    while len(registered) < n:
        await asyncio.sleep(0.05)
    registration_s = max(registered) - start
    window[0] = time.monotonic() + 2 * interval
    window[1] = window[0] + seconds
    await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
    with flame_graph(server.pid, profile, seconds):
        cpu_before, wall_before = cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(max(0.0, window[1] - time.monotonic()))
        cpu_after, wall_after = cpu_seconds(server.pid), time.monotonic()
    await asyncio.gather(*tasks, return_exceptions=False)
    for began, took in sorted(sorted(SLOW, key=lambda x: -x[1])[:show_slowest]):
        print(f"slow heartbeat at +{began - window[0]:6.2f} s: {took * 1000:6.1f} ms")
    return {
        "cpu_share": (cpu_after - cpu_before) / (wall_after - wall_before),
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "heartbeats": len(latencies),
        "rate": len(latencies) / seconds,
        "registration_s": registration_s,
    }


def history_rows_per_minute(db: Path) -> tuple[int, float]:
    """Rows of minute history written, and the rows per closed minute."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT bucket, COUNT(*) FROM gpu_history WHERE step_s = 60 GROUP BY bucket"
        ).fetchall()
    full = [count for _, count in rows]
    return sum(full), (max(full) if full else 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--show-slowest", type=int, default=0, help="print the N slowest")
    parser.add_argument("--profile", type=Path, help="flame graph of the measured part (SVG)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="procplan-agents-"))
    db = workdir / "agents.db"
    server = ServerProcess(
        ["--database", str(db)],
        env={"PROCPLAN_AGENT_TOKEN": TOKEN, "PROCPLAN_LOCAL_AGENT": "off"},
    )
    with server:
        result = asyncio.run(
            run_load(
                server, args.agents, args.seconds, args.interval, args.show_slowest, args.profile
            )
        )
        time.sleep(1.5)  # the writer's last flush
    total_rows, per_minute = history_rows_per_minute(db)
    print(f"machine: {machine()}; empty loop {empty_loop_ms():.1f} ms")
    print(
        f"SUMMARY agents={args.agents} gpus={args.agents * 8} interval_s={args.interval} "
        f"heartbeats_per_s={result['rate']:.0f} "
        f"server_cpu_pct_of_core={result['cpu_share'] * 100:.1f} "
        f"heartbeat_p50_ms={result['p50'] * 1000:.1f} heartbeat_p99_ms={result['p99'] * 1000:.1f} "
        f"history_rows={total_rows} history_rows_per_min={per_minute:.0f} "
        f"register_all_s={result['registration_s']:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
