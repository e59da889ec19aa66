"""Helpers shared by the benchmarks: topology files and server subprocesses."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from procplan.testing import ServerProcess


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


def start_server(args: list[str], env: dict[str, str] | None = None) -> tuple[str, ServerProcess]:
    """``procplan server ARGS`` on a free port, waited for until /health answers."""
    server = ServerProcess(args, env).start()
    return server.url, server


def stop_server(server: ServerProcess) -> None:
    server.stop()


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
