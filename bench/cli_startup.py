"""Issue #17 benchmark: how long ``procplan bookings --json`` takes, start to exit.

A real ``procplan server --demo`` (no local agent, its own SQLite file, a few bookings of
this user) runs in a subprocess; then the ``procplan`` console script next to this Python
(else ``python -m procplan.cli.main``) runs ``bookings --json`` ``--runs`` times, each a fresh
process, as people run it. ``imports_ms`` is what importing the command's modules costs
(``python -X importtime``: the sum of the top-level imports of ``procplan.cli.main`` and
``procplan.cli.bookings``, the median of 5), measured apart from the server; ``cli_cpu`` is
the command's own CPU time (user + system), which a busy machine disturbs less than wall time.
``--eager`` imports every command module first, as ``procplan`` did before issue #17.

Target (issue #17): ``cli_startup_p50_ms`` under 200.

Usage: ``python bench/cli_startup.py [--runs 20]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _servers import machine, percentile
from procplan.testing import ServerProcess

IMPORTS = "import procplan.cli.main, procplan.cli.bookings"
# ``--eager``: every command module imported before the app runs, as ``procplan.cli.main``
# did before issue #17 made them lazy (the "before" figure).
EAGER = (
    "import importlib, sys; from procplan.cli import main; "
    "[importlib.import_module(f'procplan.cli.{m}') for m, _, _ in main.LAZY.values()]; "
    "importlib.import_module('procplan.cli.serve'); sys.argv[0] = 'procplan'; main.app()"
)


def command(eager: bool = False) -> list[str]:
    if eager:
        return [sys.executable, "-c", EAGER]
    script = Path(sys.executable).with_name("procplan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "procplan.cli.main"]


def imports_ms(code: str) -> float:
    """Median over 5 runs of the summed top-level import times (µs → ms)."""
    runs = []
    for _ in range(5):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
        )
        total = 0
        for line in done.stderr.splitlines():
            parts = line.split("|")
            if line.startswith("import time:") and len(parts) == 3:
                name = parts[2]
                top_level = name == " " + name.strip()  # nested imports are indented
                if top_level and parts[1].strip().isdigit():
                    total += int(parts[1])
        runs.append(total / 1000)
    return statistics.median(runs)


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One run: its wall time and its own CPU time (user + system), in ms. The CPU time is
    the command's cost alone, whatever else the machine (and the server) is doing."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - began) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def seed_bookings(url: str, count: int) -> None:
    """A few bookings of this user (the server knows us by our Unix user on loopback)."""
    with httpx.Client(base_url=url, timeout=30) as http:
        for n in range(count):
            body = {
                "node_id": "node-b",
                "gpu_count": 1,
                "start": f"2099-01-{n + 1:02d}T09:00:00Z",
                "duration_minutes": 60,
            }
            http.post("/api/v1/bookings", json=body).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--bookings", type=int, default=5)
    parser.add_argument(
        "--eager", action="store_true", help="import every command first (the old start-up)"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="procplan-cli-"))
    server = ServerProcess(
        ["--demo", "--database", str(workdir / "cli.db")],
        env={"PROCPLAN_LOCAL_AGENT": "off"},
    )
    cmd = [*command(args.eager), "bookings", "--json"]
    env = {**os.environ, "PROCPLAN_URL": "", "PROCPLAN_TOKEN": "", "PROCPLAN_AS": ""}
    env = {k: v for k, v in env.items() if v}
    times, cpu = [], []
    with server:
        seed_bookings(server.url, args.bookings)
        env["PROCPLAN_URL"] = server.url
        run_once(cmd, env)  # warm the disk cache
        for _ in range(args.runs):
            wall_ms, cpu_ms = run_once(cmd, env)
            times.append(wall_ms)
            cpu.append(cpu_ms)
    imported = imports_ms(EAGER.split("; sys.argv")[0] if args.eager else IMPORTS)
    print(f"machine: {machine()}")
    print(f"command: {' '.join(cmd)}")
    print("runs: " + " ".join(f"{t:.0f}" for t in times) + " ms")
    print(
        f"SUMMARY cli_startup_p50_ms={percentile(times, 0.5):.0f} "
        f"cli_startup_p90_ms={percentile(times, 0.9):.0f} cli_startup_min_ms={min(times):.0f} "
        f"cli_cpu_p50_ms={percentile(cpu, 0.5):.0f} imports_ms={imported:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
