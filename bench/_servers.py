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


def client_headers(url: str, users: list[str], auth: str) -> dict[str, dict[str, str]]:
    """Each load user's request headers. ``peer``: this process's own identity on the server's
    host (the kernel's word; the user running the benchmark is the server's admin) acting for
    the user by ``X-ProcPlan-User``; ``token``: each user an admin with an API token of their
    own, sent as ``Authorization: Bearer``. A server without identity routes (before issue
    #12) gets the header in both cases, so the same command measures both versions."""
    import httpx

    headers = {user: {"X-ProcPlan-User": user} for user in users}
    if auth != "token":
        return headers
    with httpx.Client(base_url=url, timeout=30) as http:
        for user in users:
            made = http.post("/api/v1/users", json={"name": user, "role": "admin"})
            if made.status_code == 404:
                return headers  # no identity on this server
            made.raise_for_status()
            token = http.post("/api/v1/tokens", json={"user": user, "name": "bench"})
            token.raise_for_status()
            headers[user] = {"Authorization": f"Bearer {token.json()['token']}"}
    return headers


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (Linux /proc)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        stats[int(entry.name)] = (int(fields[1]), cpu)
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _) in stats.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(stats[p][1] for p in tree if p in stats)
