"""ProcPlan 1.0's conflict-heavy write mix, against ProcPlan 1.0 and against us, in one run.

Issue #18's workload: the same two nodes (4 + 2 GPUs, ProcPlan's ``config.sample.json``), 16
client threads that each open a new connection per request (as ProcPlan 1.0's own clients do,
``urllib``), booking through ``POST /api/book`` and cancelling through
``DELETE /api/bookings/{id}`` in a narrow two-day window, so that most attempts conflict.

Each round starts a fresh ProcPlan 1.0 (``python -m procplan.server`` from
``../shared/peers/procplan-1.0``, its own code, run from its folder) and a fresh ``procplan
server`` (embedded defaults, a new SQLite file), each alone on the machine for ``--seconds``,
alternating which goes first. The client is the same raw-socket loop for both; it costs the
same CPU on either side. After each run the active allocations are read from the server's
database and overlapping pairs counted (must be 0).

``python bench/peer_write_mix.py --seconds 10 --rounds 2``
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peer import PEER, peer_server
from _profile import flame_graph
from _servers import machine, percentile, process_cpu
from booking_load import audit
from procplan.testing import ServerProcess

NODES = {node: [f"{node}-gpu{i}" for i in range(n)] for node, n in (("node-a", 4), ("node-b", 2))}


def topology() -> dict[str, object]:
    """ProcPlan's sample topology: node-a with 4 A100, node-b with 2 RTX6000."""
    kinds = {"node-a": "A100", "node-b": "RTX6000"}
    return {
        "nodes": [
            {"id": node, "name": node, "gpus": [{"id": g, "kind": kinds[node]} for g in gpus]}
            for node, gpus in NODES.items()
        ]
    }


@dataclass
class Tally:
    """One client's results; merged after the run."""

    latencies: list[float] = field(default_factory=list)
    booked: int = 0
    refused: int = 0
    cancelled: int = 0
    errors: int = 0
    client_cpu_s: float = 0.0


def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """One request on a new connection, read to the server's close (HTTP/1.0 style)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def encode(method: str, path: str, port: int, payload: object = None) -> bytes:
    body = b"" if payload is None else json.dumps(payload).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def book_payload(rng: random.Random, window_start: datetime, client: int) -> dict[str, object]:
    """A booking of 1-6 whole hours in the two-day window, by GPU ids or by count."""
    node = rng.choice(list(NODES))
    start = window_start + timedelta(hours=rng.randrange(0, 42))
    end = start + timedelta(hours=rng.randint(1, 6))
    payload: dict[str, object] = {
        "node_id": node,
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
        "user_label": f"client{client}",
    }
    gpus = NODES[node]
    if rng.random() < 0.5:
        payload["gpu_ids"] = rng.sample(gpus, rng.randint(1, len(gpus)))
    else:
        payload["gpu_count"] = rng.randint(1, len(gpus))
    return payload


def client_loop(port: int, client: int, until: float, window: datetime, tally: Tally) -> None:
    """Book; while holding bookings, cancel the oldest half of the time."""
    rng = random.Random(client)
    held: list[int] = []
    while time.perf_counter() < until:
        cancel = bool(held) and rng.random() < 0.5
        if cancel:
            request = encode("DELETE", f"/api/bookings/{held.pop(0)}", port)
        else:
            request = encode("POST", "/api/book", port, book_payload(rng, window, client))
        began = time.perf_counter()
        try:
            status, body = exchange(port, request)
        except OSError:
            tally.errors += 1
            continue
        tally.latencies.append(time.perf_counter() - began)
        if cancel:
            tally.cancelled += status == 200
            tally.errors += status != 200
        elif status in (200, 201):
            tally.booked += 1
            held.append(int(json.loads(body)["booking_id"]))
        elif status == 400:
            tally.refused += 1
        else:
            tally.errors += 1


def drive(port: int, clients: int, seconds: float, window: datetime) -> tuple[Tally, float]:
    """Run the clients; the merged tally (with the clients' own CPU) and the elapsed time."""
    tallies = [Tally() for _ in range(clients)]
    cpu0 = time.process_time()
    until = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=client_loop, args=(port, i, until, window, tallies[i]))
        for i in range(clients)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    merged = Tally(client_cpu_s=time.process_time() - cpu0)
    for one in tallies:
        merged.latencies += one.latencies
        merged.booked += one.booked
        merged.refused += one.refused
        merged.cancelled += one.cancelled
        merged.errors += one.errors
    return merged, elapsed


def peer_overlaps(db: Path) -> int:
    """Overlapping pairs of active allocations in ProcPlan 1.0's database."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT a.gpu_id, b.start_utc, b.end_utc FROM booking_allocations a "
            "JOIN bookings b ON b.id = a.booking_id WHERE b.status = 'active'"
        ).fetchall()
    by_gpu: dict[str, list[tuple[str, str]]] = {}
    for gpu, start, end in rows:
        by_gpu.setdefault(gpu, []).append((start, end))
    pairs = 0
    for spans in by_gpu.values():
        for (s1, e1), (s2, e2) in itertools.combinations(spans, 2):
            pairs += s1 < e2 and s2 < e1
    return pairs


@dataclass
class Run:
    who: str
    tally: Tally
    elapsed: float
    server_cpu_s: float
    overlaps: int

    @property
    def attempts(self) -> int:
        return len(self.tally.latencies)

    def per_s(self) -> float:
        return self.attempts / self.elapsed

    def p(self, q: float) -> float:
        return percentile(self.tally.latencies, q) * 1000


def run_peer(work: Path, args: argparse.Namespace, window: datetime) -> Run:
    config, db = work / "peer.json", work / f"peer-{time.monotonic_ns()}.db"
    config.write_text(json.dumps(topology()), encoding="utf-8")
    with peer_server(config, db) as (proc, port):
        cpu0 = process_cpu(proc.pid)
        tally, elapsed = drive(port, args.clients, args.seconds, window)
        cpu = process_cpu(proc.pid) - cpu0
    return Run("peer", tally, elapsed, cpu, peer_overlaps(db))


def run_ours(work: Path, args: argparse.Namespace, window: datetime) -> Run:
    config = work / "ours.json"
    config.write_text(json.dumps(topology()), encoding="utf-8")
    db_url = f"sqlite:///{work / f'ours-{time.monotonic_ns()}.db'}"
    server = ServerProcess(["--db-url", db_url, "--config", str(config), *args.server_arg])
    with server, flame_graph(server.pid, args.profile, args.seconds):
        cpu0 = process_cpu(server.pid)
        tally, elapsed = drive(server.port, args.clients, args.seconds, window)
        cpu = process_cpu(server.pid) - cpu0
    args.profile = None  # one flame graph: the first run of ours
    _claims, overlaps = audit(db_url)
    return Run("ours", tally, elapsed, cpu, overlaps)


def line(run: Run) -> str:
    t = run.tally
    return (
        f"{run.who}: {run.per_s():.0f} attempts/s p50 {run.p(0.5):.1f} ms p99 {run.p(0.99):.1f} "
        f"ms booked {t.booked} refused {t.refused} cancelled {t.cancelled} errors {t.errors} "
        f"overlaps {run.overlaps} CPU per attempt: server "
        f"{run.server_cpu_s * 1000 / max(1, run.attempts):.2f} ms, client "
        f"{t.client_cpu_s * 1000 / max(1, run.attempts):.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="peer/ours pairs, alternating")
    parser.add_argument(
        "--server-arg", action="append", default=[], help="extra `procplan server` argument"
    )
    parser.add_argument("--profile", type=Path, help="flame graph of our first run (SVG)")
    args = parser.parse_args(argv)
    if not (PEER / "procplan" / "server.py").exists():
        print(f"ProcPlan 1.0 not found at {PEER}")
        return 2
    tomorrow = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    work = Path(tempfile.mkdtemp(prefix="procplan-mix-"))
    runs: list[Run] = []
    print(f"machine: {machine()}")
    for round_no in range(args.rounds):
        order = (run_peer, run_ours) if round_no % 2 == 0 else (run_ours, run_peer)
        for runner in order:
            runs.append(runner(work, args, tomorrow))
            print(line(runs[-1]), flush=True)
    peer = [r for r in runs if r.who == "peer"]
    ours = [r for r in runs if r.who == "ours"]
    ratios = [o.per_s() / p.per_s() for p, o in zip(peer, ours, strict=True)]
    print(
        f"SUMMARY clients={args.clients} seconds={args.seconds} rounds={args.rounds} "
        f"peer_attempts_per_s={'/'.join(f'{r.per_s():.0f}' for r in peer)} "
        f"ours_attempts_per_s={'/'.join(f'{r.per_s():.0f}' for r in ours)} "
        f"ratio={'/'.join(f'{x:.2f}' for x in ratios)} "
        f"ratio_median={statistics.median(ratios):.2f} "
        f"peer_p99_ms={'/'.join(f'{r.p(0.99):.1f}' for r in peer)} "
        f"ours_p99_ms={'/'.join(f'{r.p(0.99):.1f}' for r in ours)} "
        f"peer_overlaps={sum(r.overlaps for r in peer)} "
        f"ours_overlaps={sum(r.overlaps for r in ours)} "
        f"ours_errors={sum(r.tally.errors for r in ours)}"
    )
    return 0 if all(r.overlaps == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
