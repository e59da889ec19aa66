"""ProcPlan 1.0 (``../shared/peers/procplan-1.0``) run beside ours, by its own benchmark script.

The peer caches availability responses inside its service, so its "cold" figure is the first
pass of a fresh process: ``bin/benchmark_read.py --warmup 0 --iterations 1``, once per run,
over the config and database its own ``--generate-config --seed-per-gpu`` made (the same seed,
nodes and bookings as ``bench/availability.py``'s part 1). Run from the peer's folder with
its own ``PYTHONPATH``; nothing of it is imported here.
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from procplan.testing import free_port

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "procplan-1.0"
_MEDIAN = re.compile(r"Total summary: .*median=([0-9.]+)")


def _benchmark(work: Path, year: int, *extra: str) -> str:
    command = [
        sys.executable, str(PEER / "bin" / "benchmark_read.py"),
        "--config", str(work / "peer.json"), "--database", str(work / "peer.db"),
        "--date", f"{year}-06-01", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(PEER)}
    done = subprocess.run(
        command, cwd=PEER, env=env, capture_output=True, text=True, timeout=600, check=True
    )
    return done.stdout


def peer_year_cold_ms(work: Path, year: int, runs: int) -> float | None:
    """Median over ``runs`` fresh processes of the peer's first (uncached) pass over every
    node's year at day granularity; ``None`` when the peer is not there."""
    if not (PEER / "bin" / "benchmark_read.py").exists() or runs < 1:
        return None
    seed = ("--generate-config", "--force", "--reset-db", "--seed-per-gpu", "200")
    _benchmark(work, year, *seed, "--iterations", "1")
    totals = []
    for _ in range(runs):
        found = _MEDIAN.search(_benchmark(work, year, "--warmup", "0", "--iterations", "1"))
        if found is None:
            raise RuntimeError("the peer's benchmark printed no total")
        totals.append(float(found.group(1)) * 1000)
    return statistics.median(totals)


@contextmanager
def peer_server(config: Path, database: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """ProcPlan 1.0's own server (``python -m procplan.server``, run from its folder) on a
    free port: the process and its port, once it listens; stopped after."""
    port = free_port()
    command = [
        sys.executable, "-m", "procplan.server", "--config", str(config),
        "--database", str(database), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(PEER)}
    proc = subprocess.Popen(
        command, cwd=PEER, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if proc.poll() is not None:
                raise RuntimeError(f"ProcPlan 1.0's server exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("ProcPlan 1.0's server did not listen within 60 s")
            time.sleep(0.05)
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _http_total_ms(work: Path, year: int, url: str) -> float:
    found = _MEDIAN.search(
        _benchmark(work, year, "--mode", "http", "--url", url, "--warmup", "0", "--iterations", "1")
    )
    if found is None:
        raise RuntimeError("the peer's benchmark printed no total")
    return float(found.group(1)) * 1000


def http_cold_ms(
    work: Path, year: int, runs: int, ours: Callable[[], tuple[str, Callable[[], None]]]
) -> tuple[float, float] | None:
    """ProcPlan 1.0's own ``benchmark_read.py --mode http`` (one pass: ``/api/nodes``, then
    every node's year at day granularity, one new connection per request, ``urllib``), run
    against a freshly started ProcPlan 1.0 server and against a freshly started server of
    ours (``ours()`` starts one and returns its URL and how to stop it), ``runs`` times each,
    alternating; the medians in ms (peer, ours), or ``None`` without the peer. Call after
    ``peer_year_cold_ms`` made the peer's config and database."""
    if not (PEER / "procplan" / "server.py").exists() or runs < 1:
        return None
    peer_times, our_times = [], []
    for _ in range(runs):
        with peer_server(work / "peer.json", work / "peer.db") as (_, port):
            url = f"http://127.0.0.1:{port}"
            peer_times.append(_http_total_ms(work, year, url))
        url, stop = ours()
        try:
            our_times.append(_http_total_ms(work, year, url))
        finally:
            stop()
    return statistics.median(peer_times), statistics.median(our_times)
