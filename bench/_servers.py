"""Helpers shared by the benchmarks: topology files and server subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    """``procplan server ARGS`` on a free port, waited for until /health answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "procplan.cli.main", "server", "--port", str(port), *args]
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "PROCPLAN_LOG_LEVEL": "warning", **(env or {})},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return url, proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


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
