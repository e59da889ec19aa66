"""local-gpu-scheduler's ``POST /acquire`` under load: acquire one GPU, give it back, again.

Each of ``--clients`` threads asks for one GPU for a process of its own (``{"pid": <a
sleeping child's PID>, "num_gpus": 1}``: the server refuses its own parent's PID, and a
child of this script is the caller's) on a new connection per request,
as the ``srun`` script does, and cancels the job at once (``DELETE /api/v1/jobs/{id}``), so
the next acquire is answered by a hand-over. The server is ``procplan server --demo`` without
agents: the GPUs are the demo host's eight. Reports acquires per second, the acquire latency
and the server's CPU per acquire (the cycle that starts the job included); ``--profile``
writes a flame graph of the server.

``python bench/acquire_load.py --seconds 10``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _profile import flame_graph
from _servers import machine, percentile, process_cpu
from peer_write_mix import encode, exchange
from procplan.testing import ServerProcess


def client(port: int, until: float, latencies: list[float], errors: list[int]) -> None:
    with subprocess.Popen(["sleep", "3600"]) as sleeper:
        try:
            acquire_loop(port, sleeper.pid, until, latencies, errors)
        finally:
            sleeper.kill()


def acquire_loop(
    port: int, pid: int, until: float, latencies: list[float], errors: list[int]
) -> None:
    body = {"pid": pid, "num_gpus": 1}
    while time.perf_counter() < until:
        began = time.perf_counter()
        status, answer = exchange(port, encode("POST", "/acquire", port, body))
        if status != 200:
            errors.append(status)
            continue
        latencies.append(time.perf_counter() - began)
        job_id = json.loads(answer)["job_id"]
        if exchange(port, encode("DELETE", f"/api/v1/jobs/{job_id}", port))[0] != 200:
            errors.append(-1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", type=Path, help="flame graph of the server (SVG)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="procplan-acquire-"))
    env = {"PROCPLAN_LOCAL_AGENT": "off", "PROCPLAN_BATCH_REQUIRES_AGENT": "false"}
    latencies: list[float] = []
    errors: list[int] = []
    with ServerProcess(["--demo", "--database", str(work / "acquire.db")], env) as server:
        until = time.perf_counter() + args.seconds
        threads = [
            threading.Thread(target=client, args=(server.port, until, latencies, errors))
            for _ in range(args.clients)
        ]
        with flame_graph(server.pid, args.profile, args.seconds):
            cpu0, began = process_cpu(server.pid), time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            cpu, elapsed = process_cpu(server.pid) - cpu0, time.perf_counter() - began
    done = len(latencies)
    print(f"machine: {machine()}")
    print(
        f"SUMMARY clients={args.clients} seconds={elapsed:.1f} acquires_per_s={done / elapsed:.0f} "
        f"acquire_p50_ms={percentile(latencies, 0.5) * 1000:.1f} "
        f"acquire_p99_ms={percentile(latencies, 0.99) * 1000:.1f} errors={len(errors)} "
        f"server_cpu_ms_per_acquire={cpu * 1000 / max(done, 1):.2f}"
    )
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
