"""What the worst requests cost a real server: peak memory and answer size per request.

Starts ``procplan server --demo`` (SQLite by default, ``--db-url`` for PostgreSQL), seeds
jobs with the largest command lines a job may have, then sends each request of a list of
the most expensive ones the limits still allow plus the attacks of issue #11 (repeated node
ids, oversized bodies, deep nesting, a century of history), on one keep-alive connection.

For each request the server's peak RSS is reset first (``/proc/PID/clear_refs``, 5), so
``VmHWM`` afterwards minus ``VmRSS`` before is what that one request needed. Targets: no
request raises the peak by more than 64 MB; no answer is larger than the answer cap
(24 MiB by default); no 5xx and no dropped connection.

Prints a final ``SUMMARY`` line: the largest peak increase, the largest answer, 5xx count
and connections lost.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import machine
from procplan.testing import ServerProcess

MB = 1_000_000
USER = {"X-ProcPlan-User": "bench", "Content-Type": "application/json"}
YEAR = {"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}
LONG = {"start": "2026-01-01T00:00:00Z", "end": "2027-02-04T00:00:00Z"}  # 400 days


def _proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def requests_to_send() -> list[tuple[str, str, str, bytes | None]]:
    """(name, method, path, body): the heaviest requests the limits allow, and the attacks."""
    bulk = json.dumps
    return [
        ("bulk: node-a repeated 1,000 times", "POST", "/api/availability_bulk",
         bulk({"node_ids": ["node-a"] * 1000, **YEAR, "granularity": "day"}).encode()),
        ("bulk: node-a repeated 4,096 times, hours", "POST", "/api/availability_bulk",
         bulk({"node_ids": ["node-a"] * 4096, **YEAR}).encode()),
        ("bulk: every node, 400 days of hours", "POST", "/api/availability_bulk",
         bulk(LONG).encode()),
        ("bulk: node-a and node-b, 400 days of hours", "POST", "/api/availability_bulk",
         bulk({"node_ids": ["node-a", "node-b"], **LONG}).encode()),
        ("bulk: every node, 400 days of days", "POST", "/api/availability_bulk",
         bulk({**LONG, "granularity": "day"}).encode()),
        ("one node, 400 days of hours", "GET",
         "/api/availability?node_id=node-b&start=2026-01-01T00:00:00Z"
         "&end=2027-02-04T00:00:00Z", None),
        ("calendar: every node, 400 days", "GET",
         "/api/v1/calendar?start=2026-01-01T00:00:00Z&end=2027-02-04T00:00:00Z", None),
        ("history: 18,720 points per GPU", "GET",
         "/api/v1/nodes/node-b/history?start=2026-11-01T00:00:00Z&end=2026-11-14T00:00:00Z"
         "&step=60", None),
        ("history: a century of minutes", "GET",
         "/api/v1/nodes/node-b/history?start=1970-01-01&end=2070-01-01&step=60", None),
        ("jobs: a page of 1,000 with 60 kB commands", "GET", "/api/v1/jobs?limit=1000", None),
        ("bookings: a page of 1,000", "GET", "/api/v1/bookings?limit=1000", None),
        ("body of 1 MiB of JSON string", "POST", "/api/v1/jobs",
         b'{"name": "' + b"x" * (1024 * 1024 - 20) + b'"}'),
        ("body of 64 MiB", "POST", "/api/v1/jobs", b"x" * (64 << 20)),
        ("nesting 100,000 deep", "POST", "/api/book", b"[" * 100_000 + b"]" * 100_000),
        ("5,000-digit integer", "POST", "/api/v1/jobs", b'{"gpu_count": ' + b"9" * 5000 + b"}"),
    ]  # fmt: skip


def _call(conn: http.client.HTTPConnection, method: str, path: str, body: object) -> None:
    conn.request(method, path, body=json.dumps(body).encode(), headers=USER)
    response = conn.getresponse()
    response.read()
    if response.status >= 300:
        raise RuntimeError(f"seeding: {method} {path}: {response.status}")


def seed(conn: http.client.HTTPConnection, jobs: int) -> None:
    """Jobs with about the longest command line a job may have (64 KiB), pinned to node-b
    while another user has booked all of it, so they stay pending (nothing runs)."""
    booking = {"node_id": "node-b", "gpu_count": 8, "start": "now", "duration_minutes": 60}
    _call(conn, "POST", "/api/v1/bookings", {**booking, "start": _now(), "user": "owner"})
    for n in range(jobs):
        job = {"command": ["echo", "x" * 65_000], "gpu_count": 1, "node_id": "node-b",
               "time_limit_s": 60, "name": f"{n}"}  # fmt: skip
        _call(conn, "POST", "/api/v1/jobs", job)


def _now() -> str:
    """This minute, in UTC (bookings start on whole minutes)."""
    return time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime())


def measure(server: ServerProcess, args: argparse.Namespace) -> tuple[float, int, int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    seed(conn, args.jobs)
    worst_mb, largest, server_errors, lost = 0.0, 0, 0, 0
    print(f"{'request':<45} {'status':>6} {'answer MB':>10} {'peak +MB':>9} {'ms':>7}")
    for name, method, path, body in requests_to_send():
        _reset_peak(server.pid)
        before = _proc_kb(server.pid, "VmRSS")
        began = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=USER)
            response = conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            lost += 1
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            status, data = 0, b""
        elapsed = (time.perf_counter() - began) * 1000
        peak_mb = max(0, _proc_kb(server.pid, "VmHWM") - before) * 1000 / MB
        worst_mb, largest = max(worst_mb, peak_mb), max(largest, len(data))
        server_errors += status >= 500
        print(f"{name:<45} {status:>6} {len(data) / MB:>10.2f} {peak_mb:>9.1f} {elapsed:>7.0f}")
    return worst_mb, largest, server_errors, lost


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-url", help="default: a fresh SQLite file")
    parser.add_argument("--jobs", type=int, default=600, help="60 kB jobs to seed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = ["--db-url", args.db_url] if args.db_url else ["--database", f"{tmp}/h.db"]
        with ServerProcess(["--demo", *store]) as server:
            worst_mb, largest, server_errors, lost = measure(server, args)
    print(f"machine: {machine()}")
    print(
        f"SUMMARY backend={'postgresql' if args.db_url else 'sqlite'} "
        f"max_peak_increase_mb={worst_mb:.1f} max_answer_mb={largest / MB:.2f} "
        f"server_errors={server_errors} connections_lost={lost}"
    )
    return 0 if worst_mb <= 64 and server_errors == 0 and lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
