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
import statistics
import subprocess
import sys
from pathlib import Path

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
