"""Usage reports over a month of a 300-node cluster (issue #14; target: < 2 s per report).

Builds, straight into a SQLite store (bulk inserts), what a real server would hold after 30
days of 300 nodes × 8 GPUs reporting (``--nodes``, ``--gpus``, ``--days``):

- **history as the server keeps it**: the leader rolls closed hours into hourly rows (step
  3600) and keeps minute rows (step 60) next to them for ``history_minutes_days``. Reports read
  hourly rows up to the roll-up frontier and minute rows only after it (``store.usage_repo``),
  so the minute rows of rolled hours are never read; 14 days of them (48 M rows, several GB)
  would only make this file bigger. The bench writes hourly rows for every hour, plus the
  minute rows of the last ``--minute-hours`` hours (default 24, 3.5 M rows), interleaved hour
  by hour as the server writes them, and leaves the current hour unrolled (minutes only);
- bookings (about one a day per GPU, 2–24 h, a fifth of them cancelled part-way), jobs (1–8
  GPUs on one node, 10 min – 12 h, queue waits up to an hour) and their claims, 200 users in
  20 tenants;
- utilization per GPU-hour: high under a job, half the booked-but-jobless hours busy (someone
  working without the scheduler), 3 % of free hours busy (unbooked use).

Then times ``UsageService.report`` by user, tenant and node over the 30 days (first call and
median of ``--repeat``), with its parts (claims, busy buckets, arithmetic), the ``history``
list and one job's efficiency. Ends with one ``SUMMARY`` line.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import machine, write_topology
from procplan.config import Settings
from procplan.core.timeutil import DAY, HOUR, MINUTE
from procplan.core.usage import By, account
from procplan.server import Composed, compose, tune_gc
from procplan.service.usage import UsageService
from procplan.store import tables
from procplan.testing import FakeClock
from procplan.wire.usage import report_json

T0 = 1_793_491_200  # 2026-11-01T00:00:00Z
HISTORY_COLUMNS = ["gpu_pk", "step_s", "bucket", "n"] + [
    f"{m}_{part}" for m in tables.HISTORY_METRICS for part in ("sum", "n", "max")
]


def _insert(composed: Composed, table: str, columns: list[str], rows: list[tuple]) -> None:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with composed.store.write() as conn:
        conn.exec_driver_sql(sql, rows)


def seed_people(composed: Composed, users: int, tenants: int) -> tuple[list[int], list[int]]:
    """``users`` users in ``tenants`` tenants; returns (user pks, tenant pk of each user)."""
    columns = ["id", "email", "fair_share_weight", "allow_borrow", "allow_preemption",
               "priority_tier", "usage_gpu_s", "usage_at", "created_at"]  # fmt: skip
    rows = [(f"t{t:02d}", "", 1.0, True, True, 0, 0.0, 0, T0) for t in range(tenants)]
    _insert(composed, "tenants", columns, rows)
    _insert(composed, "users", ["name", "created_at", "role", "disabled"],
            [(f"u{u:03d}", T0, "user", False) for u in range(users)])  # fmt: skip
    with composed.store.read() as conn:
        t_pks = [r[0] for r in conn.exec_driver_sql("SELECT pk FROM tenants ORDER BY id")]
        u_pks = [r[0] for r in conn.exec_driver_sql("SELECT pk FROM users WHERE name LIKE 'u%' "
                                                    "ORDER BY name")]  # fmt: skip
    homes = [t_pks[i % tenants] for i in range(users)]
    _insert(composed, "memberships", ["tenant_pk", "user_pk", "created_at", "manager"],
            [(t, u, T0, False) for u, t in zip(u_pks, homes, strict=True)])  # fmt: skip
    return u_pks, homes


def seed_month(composed: Composed, days: int, minute_hours: int, seed: int) -> dict[str, int]:
    """Bookings, jobs, claims and history; returns row counts."""
    rng = random.Random(seed)
    users, homes = seed_people(composed, 200, 20)
    with composed.store.read() as conn:
        gpu_rows = conn.exec_driver_sql(
            "SELECT gpus.pk, nodes.pk, nodes.id FROM gpus JOIN nodes ON nodes.pk = gpus.node_pk "
            "ORDER BY nodes.pk, gpus.position"
        ).all()
    hours = days * 24
    by_node: dict[int, list[int]] = {}
    for gpu_pk, node_pk, _ in gpu_rows:
        by_node.setdefault(node_pk, []).append(gpu_pk)
    node_ids = {node_pk: node_id for _, node_pk, node_id in gpu_rows}
    state = {gpu_pk: bytearray(hours) for gpu_pk, _, _ in gpu_rows}  # 0 free 1 booked 2 job
    bookings, claims, jobs = [], [], []
    booking_id = job_id = 0
    for node_pk, gpu_pks in by_node.items():
        for gpu_pk in gpu_pks:  # about one booking a day per GPU, 2-24 h, no overlaps
            hour = rng.randrange(0, 24)
            while hour < hours - 2:
                length = rng.randint(2, 24)
                end = min(hour + length, hours)
                booking_id += 1
                user = rng.randrange(len(users))
                cancelled = rng.random() < 0.2
                stop = T0 + (hour + (end - hour) // 2) * HOUR if cancelled else T0 + end * HOUR
                bookings.append((booking_id, node_pk, users[user], "b", 2,
                                 "cancelled" if cancelled else "completed", T0 + hour * HOUR,
                                 T0 + end * HOUR, T0, stop, 1))  # fmt: skip
                claims.append((booking_id, None, gpu_pk, T0 + hour * HOUR, T0 + end * HOUR, 0))
                for h in range(hour, (stop - T0) // HOUR):
                    state[gpu_pk][h] = 1
                hour = end + rng.randint(4, 40)
        hour = rng.randrange(0, 6)
        while hour < hours - 1:  # jobs on this node, 1-8 GPUs, 10 min - 12 h
            count = rng.choice((1, 1, 2, 4, 8))
            start = T0 + hour * HOUR + rng.randrange(0, HOUR)
            end = min(start + rng.randint(600, 12 * HOUR), T0 + hours * HOUR)
            job_id += 1
            user = rng.randrange(len(users))
            jobs.append((job_id, users[user], homes[user], "batch", f"job{job_id}", "completed",
                         100, count, 1, start - rng.randrange(0, HOUR), start, end,
                         node_ids[node_pk], 0, 0, "[]", "[]", "{}", "", 1, False))  # fmt: skip
            for position, gpu_pk in enumerate(rng.sample(gpu_pks, count)):
                claims.append((None, job_id, gpu_pk, start, end, position))
                for h in range((start - T0) // HOUR, (end - T0 - 1) // HOUR + 1):
                    state[gpu_pk][h] = 2
            hour += rng.randint(1, 10)
    _insert(composed, "bookings", ["id", "node_pk", "user_pk", "label", "priority", "status",
            "start_s", "end_s", "created_at", "updated_at", "version"], bookings)  # fmt: skip
    _insert(composed, "jobs", ["id", "user_pk", "tenant_pk", "kind", "name", "state",
            "priority", "gpu_count", "nodes", "submitted_at", "started_at", "ended_at",
            "alloc_nodes", "requeues", "exit_code", "command", "env", "extra", "message",
            "version", "borrowed"], jobs)  # fmt: skip
    _insert(composed, "claims", ["booking_id", "job_id", "gpu_pk", "start_s", "end_s",
            "position", "active"], [(*c, False) for c in claims])  # fmt: skip
    history = seed_history(composed, state, hours, minute_hours, rng)
    return {"bookings": len(bookings), "jobs": len(jobs), "claims": len(claims), **history}


def _util(state: int, rng: random.Random) -> float:
    if state == 2:
        return rng.uniform(40, 100)
    if state == 1:
        return rng.uniform(20, 90) if rng.random() < 0.5 else rng.uniform(0, 2)
    return rng.uniform(10, 60) if rng.random() < 0.03 else 0.0


def seed_history(
    composed: Composed,
    state: dict[int, bytearray],
    hours: int,
    minute_hours: int,
    rng: random.Random,
) -> dict[str, int]:
    """Hourly rows for every closed hour; minute rows for the last ``minute_hours`` hours and
    the current (unrolled) one, written hour by hour as the server would."""
    hourly = minutes = 0
    batch: list[tuple] = []

    def flush() -> None:
        if batch:
            _insert(composed, "gpu_history", HISTORY_COLUMNS, batch)
            batch.clear()

    for h in range(hours + 1):
        bucket = T0 + h * HOUR
        for gpu_pk, marks in state.items():
            util = _util(marks[min(h, hours - 1)], rng)
            if h >= hours - minute_hours:
                for m in range(60):
                    u = util if util == 0.0 else max(0.0, util + rng.uniform(-5, 5))
                    batch.append((gpu_pk, MINUTE, bucket + m * MINUTE, 30, 30 * u, 30, u,
                                  30 * 20000.0, 30, 20000.0, 30 * 55.0, 30, 56.0, 30 * 250.0,
                                  30, 260.0))  # fmt: skip
                    minutes += 1
            if h < hours:  # the last hour is the current one: not rolled up yet
                batch.append((gpu_pk, HOUR, bucket, 1800, 1800 * util, 1800, min(util + 5, 100),
                              1800 * 20000.0, 1800, 20000.0, 1800 * 55.0, 1800, 56.0,
                              1800 * 250.0, 1800, 260.0))  # fmt: skip
                hourly += 1
        if len(batch) > 200_000:
            flush()
    flush()
    return {"hourly_rows": hourly, "minute_rows": minutes}


def timed(fn, repeat: int) -> tuple[float, float, float, object]:  # type: ignore[no-untyped-def]
    """First call, then the medians of ``repeat`` more: wall and CPU time of this process
    (all its threads) in ms, and the last result. On a shared VM the CPU time is the steadier
    figure: wall time grows with whatever else runs."""
    began = time.perf_counter()
    result = fn()
    first = (time.perf_counter() - began) * 1000
    walls, cpus = [], []
    for _ in range(repeat):
        began, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append((time.perf_counter() - began) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    if not walls:
        return first, first, float("nan"), result
    return first, statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=300)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--minute-hours", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the store in this folder")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        reuse = (tmp / "usage.db").exists()
        config = write_topology(tmp / "topology.json", args.nodes, args.gpus)
        db = f"sqlite:///{tmp / 'usage.db'}"
        now = T0 + args.days * DAY + 30 * MINUTE  # half-way through the unrolled hour
        composed = compose(Settings(db_url=db, config=config), clock=FakeClock(now))
        began = time.perf_counter()
        counts = (
            _counts(composed)
            if reuse
            else seed_month(composed, args.days, args.minute_hours, args.seed)
        )
        seed_s = time.perf_counter() - began
        size_mb = (tmp / "usage.db").stat().st_size / 1e6
        print(f"seeded in {seed_s:.1f} s: {counts}, {size_mb:.0f} MB")
        tune_gc()  # as ``procplan server`` does once it has started
        service = UsageService(composed.store, composed.jobs.clock)
        start, end = T0, now
        results = {}
        for by in By:
            first, median, cpu, report = timed(
                lambda by=by: report_json(*_fields(service.report(by, start, end))), args.repeat
            )
            results[by.value] = (first, median, cpu)
            rows = len(report["rows"])  # type: ignore[index]
            print(f"report by {by.value}: first {first:.0f} ms, median {median:.0f} ms "
                  f"(CPU {cpu:.0f} ms), {rows} rows")  # fmt: skip
        parts = _parts(service, start, end)
        print("parts (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()))
        _, hist_ms, _, listed = timed(lambda: service.history(start, end, limit=1000), args.repeat)
        _, eff_ms, _, _ = timed(lambda: service.job_usage(listed[0].id), args.repeat)  # type: ignore[index]
        composed.store.dispose()
    worst = max(m for _, m, _ in results.values())
    print(
        f"SUMMARY nodes={args.nodes} gpus={args.nodes * args.gpus} days={args.days} "
        f"hourly_rows={counts['hourly_rows']} minute_rows={counts['minute_rows']} "
        f"claims={counts['claims']} jobs={counts['jobs']} "
        + " ".join(f"report_{k}_first_ms={f:.0f} report_{k}_ms={m:.0f} report_{k}_cpu_ms={c:.0f}"
                   for k, (f, m, c) in results.items())
        + f" history_1000_ms={hist_ms:.0f} job_efficiency_ms={eff_ms:.1f} "
        f"target_2s={'met' if worst < 2000 else 'missed'}"
    )  # fmt: skip


def _counts(composed: Composed) -> dict[str, int]:
    """The row counts of a store built by an earlier run (``--keep``)."""
    queries = {
        "bookings": "SELECT count(*) FROM bookings",
        "jobs": "SELECT count(*) FROM jobs",
        "claims": "SELECT count(*) FROM claims",
        "hourly_rows": "SELECT count(*) FROM gpu_history WHERE step_s = 3600",
        "minute_rows": "SELECT count(*) FROM gpu_history WHERE step_s = 60",
    }
    with composed.store.read() as conn:
        return {k: int(conn.exec_driver_sql(q).scalar() or 0) for k, q in queries.items()}


def _fields(report):  # type: ignore[no-untyped-def]
    return (report.by, report.start, report.end, report.until, report.threshold_pct,
            report.rows, report.total)  # fmt: skip


def _parts(service: UsageService, start: int, end: int) -> dict[str, float]:
    """Where a report's time goes: the reads, then the pure arithmetic."""
    out: dict[str, float] = {}
    began = time.perf_counter()
    holds = service.repo.holds(start, end)
    out["claims"] = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    busy = service.repo.busy(start, end, service.busy_pct)
    out["busy_buckets"] = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    starts = service.repo.starts(start, end)
    out["job_starts"] = (time.perf_counter() - began) * 1000
    began = time.perf_counter()
    usage = account(start, end, holds, busy, starts, service.repo.gpu_nodes())
    usage.grouped(By.USER)
    out["arithmetic"] = (time.perf_counter() - began) * 1000
    out["busy_spans"] = sum(len(v) for v in busy.values())
    return out


if __name__ == "__main__":
    main()
