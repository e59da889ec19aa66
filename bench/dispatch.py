"""Issue #4 benchmark: how fast a batch job placed on a node starts its process.

A real ``procplan server`` and a real ``procplan agent --fake-gpus 8`` process (separate
processes, loopback HTTP). Jobs are submitted one at a time, 0.3 s apart; each job's command is
``/bin/sh -c 'date +%s.%N'``, which prints the instant its process started. Measured per job:
from sending the submission to the process's first instruction. That includes the
submission's HTTP round trip and commit, the cycle that places the job, the agent's long poll
waking, and the launch — so it bounds the issue's "placed on a node → process started" from
above. (An observer long-polling the job's state proved no finer: its answer arrives after
the process has already started.)

Then the agent idles (reporting 8 fake GPUs every 2 s) and its CPU use is measured.

Targets (issue #4): placement → start p50 <= 200 ms; agent CPU < 1 % of a core.

Usage: ``python bench/dispatch.py [--jobs 50]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _servers import empty_loop_ms, machine, percentile
from procplan.testing import ServerProcess

TOKEN = "bench-token"
NODE = "bench-node"
USER = {"X-ProcPlan-User": __import__("getpass").getuser()}


def wait_online(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = httpx.get(f"{url}/api/v1/nodes/{NODE}")
        if reply.status_code == 200 and reply.json()["state"] == "online":
            return
        time.sleep(0.1)
    raise RuntimeError("the agent did not come online")


def one_job(http: httpx.Client, workdir: Path) -> float:
    body = {
        "command": ["/bin/sh", "-c", "date +%s.%N"],
        "workdir": str(workdir),
        "node_id": NODE,
        "gpu_count": 1,
        "time_limit_s": 60,
    }
    sent = time.time()
    reply = http.post("/api/v1/jobs", json=body, headers=USER)
    reply.raise_for_status()
    job_id = int(reply.json()["job_id"])
    log = workdir / f"procplan-{job_id}.out"
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text().strip()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} did not start")
        time.sleep(0.002)
    return float(log.read_text().split()[0]) - sent


def idle_cpu_share(pid: int, seconds: float) -> float:
    """The agent's CPU use (share of one core) while it only reports (8 GPUs, every 2 s)."""
    process = psutil.Process(pid)
    before, began = sum(process.cpu_times()[:2]), time.monotonic()
    time.sleep(seconds)
    return (sum(process.cpu_times()[:2]) - before) / (time.monotonic() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle agent CPU")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="procplan-dispatch-"))
    server = ServerProcess(
        ["--database", str(workdir / "dispatch.db")],
        env={"PROCPLAN_AGENT_TOKEN": TOKEN, "PROCPLAN_LOCAL_AGENT": "off"},
    )
    with server:
        agent = subprocess.Popen(
            [sys.executable, "-m", "procplan.cli.main", "agent", "--server", server.url,
             "--token", TOKEN, "--node-id", NODE, "--fake-gpus", "8",
             "--state-dir", str(workdir / "state"), "--log-level", "warning"],
        )  # fmt: skip
        try:
            wait_online(server.url)
            http = httpx.Client(base_url=server.url)
            one_job(http, workdir)  # warm-up
            results = []
            for _ in range(args.jobs):
                time.sleep(0.3)  # each job alone: the previous one's exit report is done
                results.append(one_job(http, workdir))
            agent_cpu = idle_cpu_share(agent.pid, args.idle)
        finally:
            agent.terminate()
            agent.wait(15)
    print(f"machine: {machine()}; empty loop {empty_loop_ms():.1f} ms")
    print(
        f"SUMMARY jobs={args.jobs} "
        f"submit_to_start_p50_ms={percentile(results, 0.5) * 1000:.0f} "
        f"submit_to_start_p99_ms={percentile(results, 0.99) * 1000:.0f} "
        f"idle_agent_cpu_pct_of_core={agent_cpu * 100:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
