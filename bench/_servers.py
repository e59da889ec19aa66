"""Helpers shared by the benchmarks: topology files, percentiles, the machine line.

Server subprocesses come from ``procplan.testing.ServerProcess``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def write_topology(path: Path, nodes: int, gpus_per_node: int, kind: str = "A100") -> Path:
    """A ProcPlan JSON config with ``nodes`` × ``gpus_per_node`` GPUs."""
    payload = {
        "nodes": [
            {
                "id": f"n{n:03d}",
                "name": f"Node {n:03d}",
                "gpus": [{"id": f"n{n:03d}-g{g}", "kind": kind} for g in range(gpus_per_node)],
            }
            for n in range(nodes)
        ]
    }
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine() -> str:
    """One line describing this machine, for docs/benchmarks.md."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}"


def empty_loop_ms() -> float:
    """Machine speed calibration: the best of five 1M-iteration empty loops, in ms of CPU."""

    def once() -> float:
        began = time.process_time()
        for _ in range(1_000_000):
            pass
        return (time.process_time() - began) * 1000

    return min(once() for _ in range(5))
