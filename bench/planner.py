"""Benchmark of the pure scheduler core: ``core.planner.plan`` on synthetic snapshots.

Main scenario (the target in the job-queue brief): 300 nodes × 8 GPUs (2,400 GPUs, A100 and
H100 nodes), 2,000 running jobs filling most of the cluster, 5,000 bookings over the next two
weeks, 10,000 pending jobs of 1/2/4/8 GPUs from 100 users in 20 tenants (a few open-ended,
pinned, multi-node, kind- or memory-constrained, quota-limited). Target: well under 100 ms
per plan (aim: 50 ms on the reference VM). Then a growth table: nodes 10/30/100/300 at
10,000 pending (running jobs and bookings scale with the cluster), and pending 100/1,000/
10,000 at 300 nodes.

Snapshots are built deterministically with ``random.Random(seed)``; times are CPU time of
this process (the reference machine is shared; wall time mostly measured the neighbours).

Run: ``python bench/planner.py [--repeat N] [--seed S]``; the last line is the summary.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from _servers import empty_loop_ms, percentile
from procplan.core.jobs import Job, JobState, Plan, Policy, Snapshot, Tenant
from procplan.core.model import Booking, Gpu, Node, Topology
from procplan.core.planner import plan
from procplan.core.timeutil import DAY, HOUR, MINUTE, parse_instant

NOW = parse_instant("2026-11-23T10:00:00+00:00")
TENANTS = 20
USERS = 100
POLICY = Policy()


def topology(nodes: int) -> Topology:
    """``nodes`` nodes of 8 GPUs; every third node has H100s (40 GB on every fifth)."""
    out = []
    for n in range(nodes):
        kind = "H100" if n % 3 == 2 else "A100"
        memory = 40_000 if n % 5 == 4 else 80_000
        gpus = tuple(
            Gpu(id=f"node{n:03d}-gpu{i}", kind=kind, index=i, memory_mb=memory) for i in range(8)
        )
        out.append(Node(id=f"node{n:03d}", name=f"Node {n:03d}", gpus=gpus))
    return Topology(tuple(out))


def tenants(rng: random.Random) -> dict[str, Tenant]:
    out = {}
    for t in range(TENANTS):
        quota = rng.choice((None, None, None, 64, 128))
        out[f"t{t:02d}"] = Tenant(
            id=f"t{t:02d}",
            max_gpus=quota,
            max_jobs=rng.choice((None, None, 200)),
            fair_share_weight=rng.choice((1.0, 1.0, 2.0, 0.5)),
            allow_borrow=rng.random() < 0.7,
            priority_tier=rng.choice((0, 0, 0, 100)),
        )
    return out


def user_tenant(user: int) -> str:
    return f"t{user % TENANTS:02d}"


def running_jobs(rng: random.Random, topo: Topology, count: int) -> list[Job]:
    """``count`` jobs of 1 or 2 GPUs placed first-fit on random nodes."""
    free = {node.id: [g.id for g in node.gpus] for node in topo.nodes}
    node_ids = [node.id for node in topo.nodes]
    jobs = []
    for i in range(count):
        size = 1 if rng.random() < 0.85 else 2
        for _ in range(20):
            node_id = rng.choice(node_ids)
            if len(free[node_id]) >= size:
                break
        else:
            continue
        gpus = tuple(free[node_id][:size])
        del free[node_id][:size]
        user = rng.randrange(USERS)
        started = NOW - rng.randrange(1, 12 * HOUR)
        limit = None if rng.random() < 0.1 else rng.randrange(1, 25) * HOUR
        jobs.append(
            Job(
                id=1_000_000 + i,
                user=f"u{user}",
                tenant=user_tenant(user),
                state=JobState.RUNNING,
                priority=rng.choice((0, 100, 100, 500)),
                gpu_count=size,
                time_limit_s=limit,
                submitted_at=started - rng.randrange(0, HOUR),
                started_at=started,
                node_ids=(node_id,),
                gpu_ids=gpus,
                borrowed=rng.random() < 0.05,
            )
        )
    return jobs


def bookings(rng: random.Random, topo: Topology, count: int) -> list[Booking]:
    """Non-overlapping bookings of 1–2 GPUs, 1–8 h, from two hours ago to two weeks ahead."""
    taken: dict[str, list[tuple[int, int]]] = {}
    out: list[Booking] = []
    attempts = 0
    while len(out) < count and attempts < count * 10:
        attempts += 1
        node = rng.choice(topo.nodes)
        width = 1 if rng.random() < 0.7 else 2
        first = rng.randrange(len(node.gpus) - width + 1)
        gpus = tuple(g.id for g in node.gpus[first : first + width])
        start = NOW - 2 * HOUR + rng.randrange(0, 14 * DAY // HOUR) * HOUR
        end = start + rng.randrange(1, 9) * HOUR
        if any(s < end and start < e for g in gpus for s, e in taken.get(g, ())):
            continue
        for g in gpus:
            taken.setdefault(g, []).append((start, end))
        user = rng.randrange(USERS)
        out.append(Booking(len(out) + 1, node.id, gpus, start, end, f"u{user}", f"U{user}"))
    return out


def pending_jobs(rng: random.Random, topo: Topology, count: int) -> list[Job]:
    node_ids = [node.id for node in topo.nodes]
    jobs = []
    for i in range(count):
        user = rng.randrange(USERS)
        size = rng.choices((1, 2, 4, 8), weights=(40, 30, 20, 10))[0]
        nodes = 1
        if size == 8 and rng.random() < 0.1:
            size, nodes = 16, 2
        roll = rng.random()
        jobs.append(
            Job(
                id=i + 1,
                user=f"u{user}",
                tenant=user_tenant(user),
                priority=rng.choice((0, 100, 100, 100, 500, 1000)),
                gpu_count=size,
                nodes=nodes,
                gpu_kind="H100" if roll < 0.1 else ("A100" if roll < 0.3 else None),
                gpu_memory_mb=80_000 if rng.random() < 0.1 else None,
                time_limit_s=None if rng.random() < 0.03 else rng.randrange(1, 49) * 30 * MINUTE,
                node_id=rng.choice(node_ids) if nodes == 1 and rng.random() < 0.01 else None,
                submitted_at=NOW - rng.randrange(0, 2 * DAY),
            )
        )
    return jobs


def scenario(nodes: int, pending: int, seed: int) -> Snapshot:
    """The main scenario scaled to ``nodes`` (running and bookings scale with the cluster)."""
    rng = random.Random(seed)
    topo = topology(nodes)
    scale = nodes / 300
    return Snapshot(
        topology=topo,
        bookings=tuple(bookings(rng, topo, int(5000 * scale))),
        running=tuple(running_jobs(rng, topo, int(2000 * scale))),
        pending=tuple(pending_jobs(rng, topo, pending)),
        tenants=tenants(rng),
        usage={f"t{t:02d}": rng.random() * 1e6 for t in range(TENANTS)},
    )


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """CPU milliseconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    out = []
    for _ in range(repeat):
        began = time.process_time()
        fn()
        out.append((time.process_time() - began) * 1000)
    return out


def describe(result: Plan) -> str:
    estimated = sum(1 for info in result.pending.values() if info.estimated_start is not None)
    return (
        f"{len(result.starts)} starts, {len(result.preemptions)} preemptions, "
        f"{len(result.notices)} notices, {len(result.pending)} pending "
        f"({estimated} with an estimate)"
    )


def growth_row(label: str, snap: Snapshot, rounds: int) -> float:
    """Median CPU ms of ``plan`` on ``snap``, printed as one row of the growth table."""
    value = statistics.median(timed(lambda: plan(snap, NOW, POLICY), rounds))
    print(f"  {label}: {value:6.1f} ms  {describe(plan(snap, NOW, POLICY))}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    big = scenario(300, 10_000, args.seed)
    print(
        f"main: {len(big.topology.nodes)} nodes, {big.topology.gpu_count} GPUs, "
        f"{len(big.running)} running, {len(big.bookings)} bookings, {len(big.pending)} pending"
    )
    print(f"plan: {describe(plan(big, NOW, POLICY))}")
    times = timed(lambda: plan(big, NOW, POLICY), args.repeat)
    p50, p99 = statistics.median(times), percentile(times, 0.99)
    print(f"plan() main: p50 {p50:.1f} ms, p99 {p99:.1f} ms, best {min(times):.1f} ms")

    growth: dict[str, float] = {}
    print("growth (p50 ms):")
    rounds = max(3, args.repeat // 4)
    for nodes in (10, 30, 100, 300):
        snap = big if nodes == 300 else scenario(nodes, 10_000, args.seed)
        growth[f"n{nodes}"] = growth_row(f"{nodes:>3} nodes, 10000 pending", snap, rounds)
    for pending in (100, 1_000, 10_000):
        snap = big if pending == 10_000 else scenario(300, pending, args.seed)
        growth[f"p{pending}"] = growth_row(f"300 nodes, {pending:>5} pending", snap, rounds)

    loop_ms = empty_loop_ms()
    print(f"calibration: 1M empty loop {loop_ms:.1f} ms")
    print(
        f"SUMMARY plan_p50_ms={p50:.1f} plan_p99_ms={p99:.1f} plan_best_ms={min(times):.1f} "
        + " ".join(f"{key}_ms={value:.1f}" for key, value in growth.items())
        + f" empty_loop_1m_ms={loop_ms:.1f}"
    )


if __name__ == "__main__":
    main()
