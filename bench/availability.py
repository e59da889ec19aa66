"""Availability reads: ProcPlan's own read workload, the web-style week, the native calendar.

1. ProcPlan's ``bin/benchmark_read.py`` workload, generated the same way (seed 1337, 10 nodes
   with 4–10 GPUs, 200 bookings of 4 h per GPU over the year = 13,800): a one-year window at
   day granularity for every node, cold (nothing is cached between requests: every request
   reads the ledger from SQLite and builds the grid). Measured in-process (service call, all
   10 nodes) and over HTTP (one node-year per request, response fully read and decoded).
2. The web-style path of ProcPlan's page: a week at hour granularity for all nodes
   (``POST /api/availability_bulk``), with the response size.
3. The native calendar: 300 nodes × 8 GPUs holding 100,000 bookings, one week
   (``GET /api/v1/calendar``), p50 over HTTP.
4. ProcPlan 1.0 on part 1's workload in the same run (``_peer.py``: its own script, a fresh
   process per cold pass), and our cold pass's speed-up over it.
5. The same script over HTTP (``--mode http``, cold: a freshly started server per pass), once
   against ProcPlan 1.0's own server and once against ours, on part 1's data; the ratio
   (issue #18's target: at least 4× faster against us).

Ends with one ``SUMMARY`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer import http_cold_ms, peer_year_cold_ms
from _profile import flame_graph
from _rawhttp import RawHttp
from _servers import machine, percentile, write_topology
from procplan.config import Settings
from procplan.core.model import BookingRequest, Priority
from procplan.core.timeutil import DAY, HOUR, to_iso
from procplan.server import Composed, compose, tune_gc
from procplan.store import tables
from procplan.testing import FakeClock, ServerProcess
from procplan.wire.calendar import availability_grids

GPU_KINDS = ("A100", "H100", "RTX6000", "L40S", "A10")
PRIORITIES = (Priority.LOW, Priority.MEDIUM, Priority.HIGH)
Request = tuple[str, str, object]


def procplan_topology(path: Path, nodes: int = 10, seed: int = 1337) -> Path:
    """ProcPlan's generated benchmark config, drawn from the same random sequence."""
    import json

    rng = random.Random(seed)
    payload = []
    for idx in range(nodes):
        node_id = f"node-{idx + 1:02d}"
        count = rng.randint(4, 10)
        gpus = [
            {"id": f"{node_id}-gpu{g:02d}", "kind": rng.choice(GPU_KINDS)} for g in range(count)
        ]
        payload.append({"id": node_id, "name": f"Node {idx + 1:02d}", "gpus": gpus})
    path.write_text(json.dumps({"nodes": payload}), encoding="utf-8")
    return path


def year_window(year: int) -> tuple[int, int]:
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    return start, int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())


def seed_procplan_bookings(
    composed, start: int, end: int, per_gpu: int, hours: int, seed: int
) -> int:
    """ProcPlan's seeding loop, through our real booking service (validation and ledger)."""
    rng = random.Random(seed)
    total_hours = (end - start) // HOUR
    spacing = max(hours, total_hours // per_gpu)
    created = 0
    for node in composed.bookings.topology().nodes:
        for gpu in node.gpus:
            for idx in range(per_gpu):
                b_start = start + idx * spacing * HOUR
                b_end = b_start + hours * HOUR
                if b_end > end:
                    break
                req = BookingRequest(
                    node.id,
                    b_start,
                    b_end,
                    "bench",
                    f"bench-{node.id}",
                    rng.choice(PRIORITIES),
                    gpu_ids=(gpu.id,),
                )
                composed.bookings.clock.set(b_start)
                composed.bookings.create(req, whole_hours=True)
                created += 1
    return created


def bulk_seed(composed: Composed, count: int, start: int, days: int, seed: int) -> int:
    """Insert ``count`` non-overlapping bookings fast (straight SQL), for the large calendar."""
    rng = random.Random(seed)
    topo = composed.bookings.topology()
    with composed.store.write() as conn:
        user_pk = conn.execute(
            tables.users.insert().values(name="bulk", created_at=start).returning(tables.users.c.pk)
        ).scalar_one()
        node_pks = dict(
            conn.execute(
                tables.nodes.select().with_only_columns(tables.nodes.c.id, tables.nodes.c.pk)
            ).all()
        )
        gpu_pks = dict(
            conn.execute(
                tables.gpus.select().with_only_columns(tables.gpus.c.id, tables.gpus.c.pk)
            ).all()
        )
        gpus = [(node.id, gpu.id) for node in topo.nodes for gpu in node.gpus]
        base_per_gpu, extra = divmod(count, len(gpus))
        rows, claims = [], []
        booking_id = 0
        for position, (node_id, gpu_id) in enumerate(gpus):
            per_gpu = base_per_gpu + (position < extra)
            slot = days * 24 // per_gpu  # hours between booking starts on one GPU
            for k in range(per_gpu):
                booking_id += 1
                b_start = start + (k * slot + rng.randrange(0, max(1, slot - 8))) * HOUR
                b_end = b_start + rng.choice((1, 2, 4, 8)) * HOUR
                rows.append(
                    {
                        "id": booking_id,
                        "node_pk": node_pks[node_id],
                        "user_pk": user_pk,
                        "label": "bulk",
                        "priority": rng.choice((1, 2, 3)),
                        "status": "active",
                        "start_s": b_start,
                        "end_s": b_end,
                        "created_at": start,
                        "updated_at": start,
                        "version": 1,
                    }
                )
                claims.append(
                    {
                        "booking_id": booking_id,
                        "gpu_pk": gpu_pks[gpu_id],
                        "start_s": b_start,
                        "end_s": b_end,
                        "active": True,
                        "position": 0,
                    }
                )
        conn.execute(tables.bookings.insert(), rows)
        conn.execute(tables.claims.insert(), claims)
        conn.execute(
            tables.meta.update().where(tables.meta.c.key == "ledger_version").values(value=1)
        )
    return booking_id


def in_process_year(composed: Composed, start: int, end: int, iterations: int) -> list[float]:
    """All nodes' year at day granularity, one service call per node (as ProcPlan does).

    The first call (empty ISO-string memo) is reported separately as the cold start.
    """
    node_ids = [n.id for n in composed.bookings.topology().nodes]
    totals = []
    for _ in range(iterations + 1):
        t0 = time.perf_counter()
        for node_id in node_ids:
            availability_grids(composed.bookings.availability(node_id, start, end, "day"))
        totals.append(time.perf_counter() - t0)
    return totals


def query(**params: object) -> str:
    return urlencode({k: to_iso(v) if k in ("start", "end") else v for k, v in params.items()})


async def http_samples(url: str, requests: list[Request], rounds: int) -> tuple[list[float], int]:
    """Latency of each request until its body is fully received (not decoded), and the size
    of the last body. One warm-up pass first."""
    size = 0
    async with RawHttp(url) as http:
        for method, path, body in requests:
            await http.request(method, path, body, decode=False)
        samples = []
        for _ in range(rounds):
            for method, path, body in requests:
                t0 = time.perf_counter()
                status, payload = await http.request(method, path, body, decode=False)
                samples.append(time.perf_counter() - t0)
                assert status == 200, payload
                size = len(payload)  # type: ignore[arg-type]
    return samples, size


def procplan_workload(work: Path, year: int, iterations: int) -> dict[str, float]:
    """Parts 1 and 2: ProcPlan's seeded year, in-process and over HTTP."""
    y_start, y_end = year_window(year)
    db = f"sqlite:///{work / 'procplan.db'}"
    config = procplan_topology(work / "procplan.json")
    composed = compose(Settings(db_url=db, config=config), clock=FakeClock(y_start))
    t0 = time.perf_counter()
    seeded = seed_procplan_bookings(composed, y_start, y_end, 200, 4, 1337)
    seed_s = time.perf_counter() - t0
    gpus = composed.bookings.topology().gpu_count
    t0 = time.perf_counter()
    composed.bookings.warm_up()  # as the server does at start-up
    warm_s = time.perf_counter() - t0
    tune_gc()
    totals = in_process_year(composed, y_start, y_end, iterations)
    composed.store.dispose()
    print(f"seeded {seeded} bookings on {gpus} GPUs through the booking service in {seed_s:.1f} s")

    with ServerProcess(["--db-url", db]) as server:
        url = server.url
        year_reqs: list[Request] = [
            (
                "GET",
                "/api/availability?"
                + query(node_id=f"node-{i:02d}", start=y_start, end=y_end, granularity="day"),
                None,
            )
            for i in range(1, 11)
        ]
        node_year, year_bytes = asyncio.run(http_samples(url, year_reqs, iterations))
        week_start = y_start + 26 * 7 * DAY
        week_body = {
            "start": to_iso(week_start),
            "end": to_iso(week_start + 7 * DAY),
            "granularity": "hour",
        }
        bulk: list[Request] = [("POST", "/api/availability_bulk", week_body)]
        week_hour, week_bytes = asyncio.run(http_samples(url, bulk, iterations))
    return {
        "ledger_load_at_startup_ms": warm_s * 1000,
        "year_day_10_nodes_inproc_cold_ms": totals[0] * 1000,
        "year_day_10_nodes_inproc_p50_ms": percentile(totals[1:], 0.5) * 1000,
        "year_day_10_nodes_inproc_min_ms": min(totals[1:]) * 1000,
        "node_year_day_http_p50_ms": percentile(node_year, 0.5) * 1000,
        "node_year_day_http_p99_ms": percentile(node_year, 0.99) * 1000,
        "node_year_day_bytes": year_bytes,
        "week_hour_10_nodes_bulk_http_p50_ms": percentile(week_hour, 0.5) * 1000,
        "week_hour_10_nodes_bytes": week_bytes,
    }


def large_calendar(
    work: Path, year: int, bookings: int, iterations: int, profile: Path | None = None
) -> dict[str, float]:
    """Part 3: the native calendar of a week on 300 nodes × 8 GPUs with ``bookings``; with
    ``profile``, then 5 s more of the same reads under py-spy (a flame graph)."""
    y_start, _ = year_window(year)
    db = f"sqlite:///{work / 'large.db'}"
    config = write_topology(work / "large.json", 300, 8)
    big = compose(Settings(db_url=db, config=config), clock=FakeClock(y_start))
    count = bulk_seed(big, bookings, y_start, 365, 7)
    big.store.dispose()
    with ServerProcess(["--db-url", db]) as server:
        week = y_start + 200 * DAY
        path = "/api/v1/calendar?" + query(start=week, end=week + 7 * DAY)
        samples, size = asyncio.run(http_samples(server.url, [("GET", path, None)], iterations))
        if profile is not None:
            rounds = max(1, int(5 / max(percentile(samples, 0.5), 1e-3)))
            with flame_graph(server.pid, profile, 5):
                asyncio.run(http_samples(server.url, [("GET", path, None)], rounds))
    print(f"large calendar: {count} bookings on 2400 GPUs")
    return {
        "calendar_week_300x8_100k_http_p50_ms": percentile(samples, 0.5) * 1000,
        "calendar_week_300x8_100k_http_p99_ms": percentile(samples, 0.99) * 1000,
        "calendar_week_bytes": size,
    }


def fresh_server(work: Path) -> tuple[str, Callable[[], None]]:
    """A newly started server of ours on part 1's database (nothing of it warm)."""
    server = ServerProcess(["--db-url", f"sqlite:///{work / 'procplan.db'}"]).start()
    return server.url, server.stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--year", type=int, default=datetime.now(tz=UTC).year)
    parser.add_argument("--large-bookings", type=int, default=100_000)
    parser.add_argument("--peer-runs", type=int, default=3, help="ProcPlan 1.0 cold passes")
    parser.add_argument("--profile", type=Path, help="flame graph of the large calendar (SVG)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="procplan-avail-"))
    figures = procplan_workload(work, args.year, args.iterations)
    peer = peer_year_cold_ms(work, args.year, args.peer_runs)
    if peer is not None:
        figures["peer_year_day_10_nodes_cold_ms"] = peer
        figures["speedup_vs_peer_cold"] = peer / figures["year_day_10_nodes_inproc_cold_ms"]
        both = http_cold_ms(work, args.year, args.peer_runs, partial(fresh_server, work))
        if both is not None:
            figures["peer_benchmark_read_http_cold_ms"] = both[0]
            figures["ours_benchmark_read_http_cold_ms"] = both[1]
            figures["benchmark_read_http_speedup"] = both[0] / both[1]
    figures.update(
        large_calendar(work, args.year, args.large_bookings, args.iterations, args.profile)
    )
    print(f"machine: {machine()}")
    print(
        "SUMMARY "
        + " ".join(
            f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
