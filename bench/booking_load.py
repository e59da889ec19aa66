"""Booking write load: N concurrent HTTP clients create and cancel random bookings.

Starts its own server(s) (SQLite file by default; ``--servers 2`` runs two server processes on
the same file; ``--db-url postgresql+psycopg://...`` uses PostgreSQL), drives them for
``--seconds``, then audits the database: no two active claims on one GPU may overlap.

Prints a final ``SUMMARY`` line: successful bookings/s, latency p50/p99 of create calls,
rejections, and the number of overlapping claim pairs found (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rawhttp import RawHttp
from _servers import client_headers, machine, percentile, process_cpu, write_topology
from procplan.core.invariants import find_overlaps
from procplan.store.bookings_repo import BookingStore
from procplan.store.engine import Store, make_engine
from procplan.testing import ServerProcess

HOUR = 3600


@dataclass
class Stats:
    created: int = 0
    rejected: int = 0
    cancelled: int = 0
    errors: int = 0
    create_latency: list[float] = field(default_factory=list)


def random_booking(rng: random.Random, nodes: int, gpus: int, base: int) -> dict[str, object]:
    start = base + rng.randrange(0, 60 * 24) * HOUR
    body: dict[str, object] = {
        "node_id": f"n{rng.randrange(nodes):03d}",
        "start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start)),
        "duration_minutes": rng.choice((60, 120, 240, 480)),
        "priority": rng.choice(("low", "medium", "high")),
        "label": "load",
    }
    if rng.random() < 0.5:
        body["gpu_count"] = rng.choice((1, 2, 4))
    else:
        node = body["node_id"]
        body["gpu_ids"] = [f"{node}-g{i}" for i in rng.sample(range(gpus), rng.choice((1, 2)))]
    return body


async def client_loop(
    url: str,
    seed: int,
    deadline: float,
    stats: Stats,
    shape: tuple[int, int, int],
    headers: dict[str, str],
) -> None:
    nodes, gpus, base = shape
    rng = random.Random(seed)
    mine: list[int] = []
    async with RawHttp(url, headers) as http:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            body = random_booking(rng, nodes, gpus, base)
            status, reply = await http.request("POST", "/api/v1/bookings", body)
            stats.create_latency.append(time.perf_counter() - t0)
            if status == 201:
                stats.created += 1
                mine.append(reply["booking"]["id"])  # type: ignore[index]
            elif status in (400, 409):
                stats.rejected += 1
            else:
                stats.errors += 1
            if mine and rng.random() < 0.5:
                victim = mine.pop(rng.randrange(len(mine)))
                status, _ = await http.request("POST", f"/api/v1/bookings/{victim}/cancel")
                stats.cancelled += status == 200
                stats.errors += status != 200


async def drive(
    urls: list[str], seconds: float, nodes: int, gpus: int, headers: list[dict[str, str]]
) -> Stats:
    stats = Stats()
    shape = (nodes, gpus, (int(time.time()) // HOUR + 2) * HOUR)
    deadline = time.perf_counter() + seconds
    await asyncio.gather(
        *(
            client_loop(urls[i % len(urls)], i, deadline, stats, shape, sent)
            for i, sent in enumerate(headers)
        )
    )
    return stats


def audit(db_url: str) -> tuple[int, int]:
    """(active claims, overlapping pairs) read straight from the database."""
    store = Store(make_engine(db_url))
    try:
        claims = BookingStore(store).all_active_claims()
        return len(claims), len(find_overlaps(claims))
    finally:
        store.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--servers", type=int, default=1, help="separate server processes")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers per server")
    parser.add_argument("--db-url", help="default: a fresh SQLite file")
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument(
        "--auth", choices=("peer", "token"), default="peer", help="how clients prove who they are"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="procplan-load-"))
    db_url = args.db_url or f"sqlite:///{workdir / 'load.db'}"
    config = write_topology(workdir / "topology.json", args.nodes, args.gpus)
    server_args = ["--db-url", db_url, "--config", str(config), "--workers", str(args.workers)]
    procs = [ServerProcess(server_args) for _ in range(args.servers)]
    urls = [proc.url for proc in procs]
    try:
        for proc in procs:
            proc.start()
        users = [f"load{i}" for i in range(args.clients)]
        by_user = client_headers(urls[0], users, args.auth)
        started = time.perf_counter()
        server_cpu0 = sum(process_cpu(p.pid) for p in procs)
        client_cpu0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime
        headers = [by_user[user] for user in users]
        stats = asyncio.run(drive(urls, args.seconds, args.nodes, args.gpus, headers))
        elapsed = time.perf_counter() - started
        server_cpu = sum(process_cpu(p.pid) for p in procs) - server_cpu0
        client_cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - client_cpu0
    finally:
        for proc in procs:
            proc.stop()
    claims, overlaps = audit(db_url)
    requests = stats.created + stats.rejected + stats.errors + stats.cancelled
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    lat = stats.create_latency
    print(f"machine: {machine()}")
    print(
        f"SUMMARY backend={backend} auth={args.auth} servers={args.servers} "
        f"workers={args.workers} "
        f"clients={args.clients} "
        f"seconds={elapsed:.1f} bookings_per_s={stats.created / elapsed:.0f} "
        f"create_p50_ms={percentile(lat, 0.5) * 1000:.1f} "
        f"create_p99_ms={percentile(lat, 0.99) * 1000:.1f} created={stats.created} "
        f"rejected={stats.rejected} cancelled={stats.cancelled} errors={stats.errors} "
        f"active_claims={claims} overlapping_pairs={overlaps} "
        f"server_cpu_ms_per_req={server_cpu * 1000 / max(1, requests):.2f} "
        f"client_cpu_ms_per_req={client_cpu * 1000 / max(1, requests):.2f}"
    )
    return 0 if overlaps == 0 and stats.errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
