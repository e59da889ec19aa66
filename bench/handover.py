"""Instant hand-over (issue #15 item 5, ADR 0016): from a watched client's exit to the next
``srun``'s ``/acquire`` answer.

Starts a real server (``procplan server --demo``: this host is simulated with 8 GPUs, no
agents) on a fresh SQLite file. Eight ``/acquire`` clients hold the host's GPUs, one GPU each;
their PIDs are real processes of this benchmark (``sleep``). Each round queues one more
``/acquire`` (blocking in a thread, as ``srun`` does), kills the oldest holder and reaps it,
then times from the exit to the queued ``/acquire``'s answer; the new job is a holder of the
next round. Both ways of noticing the exit are measured, each on its own server:
``pid_watch=pidfd`` (the default: the kernel tells the server at once) and ``pid_watch=poll``
(the housekeeper's PID poll, once a second). A random pause of up to ``--jitter`` seconds
before each kill keeps the exits out of step with the poll (without it every exit would come
just after a cycle, and wait a whole poll period).

Prints a final ``SUMMARY`` line.
"""

from __future__ import annotations

import argparse
import collections
import functools
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import machine, percentile
from procplan.testing import ServerProcess, wait_until

GPUS = 8  # the demo's simulated local node
NODE = socket.gethostname()


class Acquire:
    """One ``srun``: a ``sleep`` process and its ``/acquire``, answered in a thread."""

    def __init__(self, url: str) -> None:
        self.proc = subprocess.Popen(["sleep", "600"], stdin=subprocess.DEVNULL)
        self.answered_at: float | None = None
        self.response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._post, args=(url,), daemon=True)
        self._thread.start()

    def _post(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            self.response = http.post("/acquire", json={"pid": self.proc.pid, "num_gpus": 1})
        self.answered_at = time.perf_counter()

    def join(self, timeout: float = 120) -> Acquire:
        self._thread.join(timeout)
        if self.response is None or self.response.status_code != 200:
            raise RuntimeError(f"/acquire failed: {self.response and self.response.text}")
        return self

    def exit(self) -> float:
        """Kill the client and reap it; the instant it is gone."""
        self.proc.kill()
        self.proc.wait()
        return time.perf_counter()


def queued(http: httpx.Client, pid: int) -> bool:
    jobs = http.get("/jobs").json()
    return any(job["pid"] == pid and job["status"] == "queued" for job in jobs)


def measure(mode: str, rounds: int, jitter: float, workdir: Path) -> list[float]:
    env = {
        "PROCPLAN_LOCAL_AGENT": "off",
        "PROCPLAN_BATCH_REQUIRES_AGENT": "false",
        "PROCPLAN_PID_WATCH": mode,
    }
    server = ServerProcess(["--demo", "--database", str(workdir / f"{mode}.db")], env)
    holders: collections.deque[Acquire] = collections.deque()
    samples: list[float] = []
    with server, httpx.Client(base_url=server.url, timeout=30) as http:
        try:
            for _ in range(GPUS):
                holders.append(Acquire(server.url).join())
            for _ in range(rounds):
                waiting = Acquire(server.url)
                parked = functools.partial(queued, http, waiting.proc.pid)
                wait_until(parked, 30, 0.01, "a queued /acquire")
                time.sleep(random.uniform(0, jitter))
                exited = holders.popleft().exit()
                waiting.join()
                assert waiting.answered_at is not None
                samples.append(waiting.answered_at - exited)
                holders.append(waiting)
        finally:
            for holder in holders:
                holder.exit()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--jitter", type=float, default=1.0, help="seconds, before each kill")
    parser.add_argument(
        "--modes", default="pidfd,poll", help="pid_watch settings to measure, comma-separated"
    )
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="procplan-handover-"))
    fields = []
    for mode in args.modes.split(","):
        samples = [s * 1000 for s in measure(mode, args.rounds, args.jitter, workdir)]
        print(f"{mode}: " + " ".join(f"{ms:.0f}" for ms in samples) + " ms")
        fields += [
            f"{mode}_p50_ms={percentile(samples, 0.5):.1f}",
            f"{mode}_p90_ms={percentile(samples, 0.9):.1f}",
            f"{mode}_max_ms={max(samples):.1f}",
        ]
    print(f"machine: {machine()}")
    print(f"SUMMARY rounds={args.rounds} jitter_s={args.jitter} " + " ".join(fields))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
