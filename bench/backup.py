"""Online backup under booking load (issue #16 item 3): how long ``procplan backup`` takes on
a large SQLite database while a server keeps booking, and what it does to booking latency.

Builds the database first: ``--nodes`` × ``--gpus`` GPUs (default 38 × 8 = 304), the server
creates the schema and topology, then bulk SQL adds ``--bookings`` bookings (default 100,000,
back to back on each GPU around now, one claim each) and ``--days`` of GPU history as the
server keeps it (minute rows for the last 14 days, the retention default, hourly rows for
all ``--days``). Then a real server serves it and ``--clients`` clients book over HTTP:
``--warmup`` seconds unmeasured, ``--before`` seconds measured, then ``procplan backup``
runs (the real command, its own process), then the copy is checked (every booking
acknowledged before the backup began is in it, quick_check ok). The backup's time includes
the command's start (about a second of imports here).

Prints ``SUMMARY backup_s=… booking_p99_ms_during=… booking_p99_ms_before=…``.
Target (issue #16): backup_s < 30 with booking p99 < 500 ms during the backup.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rawhttp import RawHttp
from _servers import client_headers, machine, percentile, write_topology
from procplan.testing import ServerProcess

HOUR = 3600
MINUTE = 60
MINUTE_DAYS = 14  # Settings.history_minutes_days


@dataclass
class Load:
    """Every create call: (monotonic time answered, seconds it took, status, booking id)."""

    calls: list[tuple[float, float, int, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


# ---- the database -------------------------------------------------------------------------


def fill(db: Path, bookings: int, days: int, now: int) -> None:
    """Bulk-insert bookings (with their claims) and GPU history with plain SQL."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    gpus = conn.execute("SELECT pk, node_pk FROM gpus ORDER BY pk").fetchall()
    user = conn.execute(
        "INSERT INTO users (name, created_at, role, disabled) VALUES ('history', ?, 'user', 0)"
        " RETURNING pk",
        (now - days * 86400,),
    ).fetchone()[0]
    per_gpu = -(-bookings // len(gpus))
    span = 2 * HOUR
    first = now - per_gpu // 2 * span  # half in the past, half ahead
    version = 0
    made = 0
    for slot in range(per_gpu):
        rows = []
        for gpu_pk, node_pk in gpus:
            if made == bookings:
                break
            made += 1
            version += 1
            start = first + slot * span
            rows.append((made, node_pk, user, start, start + span - 600, version, gpu_pk))
        conn.executemany(
            "INSERT INTO bookings (id, node_pk, user_pk, label, priority, status, start_s,"
            " end_s, created_at, updated_at, version, idle_keep)"
            " VALUES (?, ?, ?, 'history', 2, 'active', ?, ?, ?, ?, ?, 0)",
            [(i, n, u, s, e, s - 86400, s - 86400, v) for i, n, u, s, e, v, _ in rows],
        )
        conn.executemany(
            "INSERT INTO claims (booking_id, gpu_pk, start_s, end_s, active, position)"
            " VALUES (?, ?, ?, ?, 1, 0)",
            [(i, g, s, e) for i, _, _, s, e, _, g in rows],
        )
    conn.execute("UPDATE meta SET value = ? WHERE key = 'ledger_version'", (version,))
    _history(conn, [pk for pk, _ in gpus], days, now)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _history(conn: sqlite3.Connection, gpu_pks: list[int], days: int, now: int) -> None:
    rng = random.Random(1)
    sql = (
        "INSERT INTO gpu_history (gpu_pk, step_s, bucket, n, util_sum, util_n, util_max,"
        " mem_used_sum, mem_used_n, mem_used_max, temp_sum, temp_n, temp_max, power_sum,"
        " power_n, power_max) VALUES (?, ?, ?, 30, ?, 30, ?, ?, 30, ?, ?, 30, ?, ?, 30, ?)"
    )

    def rows(step: int, since: int, until: int) -> list[tuple[object, ...]]:
        out: list[tuple[object, ...]] = []
        for bucket in range(since + (-since % step), until, step):  # each bucket once
            for pk in gpu_pks:
                util = rng.random() * 100
                out.append((pk, step, bucket, util * 30, util, 30 * 20000.0, 20000.0,
                            30 * 60.0, 65.0, 30 * 250.0, 300.0))  # fmt: skip
        return out

    for day in range(days, 0, -1):  # a day at a time: bounded memory
        since, until = now - day * 86400, now - (day - 1) * 86400
        conn.executemany(sql, rows(HOUR, since, until))
        if day <= MINUTE_DAYS:
            conn.executemany(sql, rows(MINUTE, since, until))


# ---- the load -----------------------------------------------------------------------------


async def _client(
    url: str, headers: dict[str, str], seed: int, shape: tuple[int, int], load: Load
) -> None:
    nodes, gpus = shape
    rng = random.Random(f"{seed}-{time.time_ns()}")  # a rerun (--reuse) must not replay
    base = (int(time.time()) // HOUR + 24 * 40) * HOUR  # past the bulk bookings
    async with RawHttp(url, headers) as http:
        while not load.stop.is_set():
            node = f"n{rng.randrange(nodes):03d}"
            start = base + rng.randrange(0, 24 * 300) * HOUR
            body = {
                "node_id": node,
                "start": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(start)),
                "duration_minutes": 60,
                "gpu_ids": [f"{node}-g{rng.randrange(gpus)}"],
                "label": "load",
            }
            t0 = time.monotonic()
            status, reply = await http.request("POST", "/api/v1/bookings", body)
            t1 = time.monotonic()
            booking_id = reply["booking"]["id"] if status == 201 else -1  # type: ignore[index]
            load.calls.append((t1, t1 - t0, status, booking_id))


def run_load(url: str, headers: list[dict[str, str]], shape: tuple[int, int], load: Load) -> None:
    async def main() -> None:
        await asyncio.gather(*(_client(url, h, i, shape, load) for i, h in enumerate(headers)))

    asyncio.run(main())


def p99_ms(load: Load, since: float, until: float) -> tuple[float, int]:
    took = [d for t, d, _, _ in load.calls if since <= t - d and t <= until]
    return percentile(took, 0.99) * 1000, len(took)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=38)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of unmeasured load")
    parser.add_argument("--before", type=float, default=10.0, help="then measured, no backup")
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    parser.add_argument("--reuse", action="store_true", help="keep the workdir's database")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="procplan-backup-"))
    db = workdir / "big.db"
    url = f"sqlite:///{db}"
    config = write_topology(workdir / "topology.json", args.nodes, args.gpus)
    server_args = ["--db-url", url, "--config", str(config), "--no-local-agent"]
    if not (args.reuse and db.exists()):
        with ServerProcess(server_args):
            pass  # schema and topology
        began = time.monotonic()
        fill(db, args.bookings, args.days, int(time.time()))
        print(f"built {db} in {time.monotonic() - began:.0f} s", flush=True)
    size_mb = db.stat().st_size / 1e6

    load = Load()
    target = workdir / "backup.db"
    target.unlink(missing_ok=True)
    os.sync()  # the build's (or a previous run's) writes must not land in the measurement
    with ServerProcess(server_args, log_file=workdir / "server.log") as server:
        users = [f"load{i}" for i in range(args.clients)]
        by_user = client_headers(server.url, users, "peer")
        shape = (args.nodes, args.gpus)
        driver = threading.Thread(
            target=run_load, args=(server.url, [by_user[u] for u in users], shape, load)
        )
        driver.start()
        try:
            time.sleep(args.warmup + args.before)  # a fresh server's first work is not measured
            backup_began = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "procplan.cli.main", "backup", str(target), "--db-url", url],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            backup_s = time.monotonic() - backup_began
            time.sleep(2.0)
        finally:
            load.stop.set()
            driver.join()
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return 1
    print(done.stdout.strip())
    before_ms, before_n = p99_ms(load, backup_began - args.before, backup_began)
    during_ms, during_n = p99_ms(load, backup_began, backup_began + backup_s)
    acked = {bid for t, _, status, bid in load.calls if status == 201 and t < backup_began}
    with sqlite3.connect(target) as conn:
        copied = {
            row[0] for row in conn.execute("SELECT id FROM bookings WHERE id > ?", (args.bookings,))
        }
        total = conn.execute("SELECT count(*) FROM bookings").fetchone()[0]
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
    missing = len(acked - copied)
    errors = sum(1 for _, _, status, _ in load.calls if status not in (201, 409))
    created = sum(1 for _, _, status, _ in load.calls if status == 201)
    timeline = [
        f"{t - d - backup_began:+.1f}s:{d * 1000:.0f}"
        for t, d, _, _ in sorted(load.calls)
        if backup_began - 1 <= t - d <= backup_began + backup_s + 1 and d > 0.2
    ]
    print("slow calls (start relative to the backup: ms):", " ".join(timeline))
    print(f"machine: {machine()}")
    print(
        f"SUMMARY backup_s={backup_s:.1f} booking_p99_ms_during={during_ms:.0f} "
        f"booking_p99_ms_before={before_ms:.0f} db_mb={size_mb:.0f} "
        f"backup_mb={target.stat().st_size / 1e6:.0f} bookings_in_copy={total} "
        f"calls_before={before_n} calls_during={during_n} created={created} "
        f"conflicts={len(load.calls) - created - errors} errors={errors} "
        f"acked_before_missing={missing} quick_check={check}"
    )
    return 0 if missing == 0 and check == "ok" and errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
