"""Two real servers on one PostgreSQL database, one agent and clients on the URL list, and a
``kill -9`` of whichever server runs the cycle (ADR 0021).

Used by ``tests/e2e/test_failover_e2e.py`` (two kills) and ``bench/failover.py`` (ten). All
traffic goes through ``procplan.client`` on the list ``a,b``, as users' commands and agents
would. While the kills happen, two threads run throughout:

- a booker makes one-hour bookings far in the future (each its own hour, so none conflicts)
  and keeps the ids of those acknowledged with a 2xx; at the end each must exist;
- a sampler lists the running jobs every 50 ms; no GPU may appear under two of them.

One kill (``Rig.kill_leader``): a blocker job holds all of the node's GPUs, and a real
``procplan run`` waits (long poll) for one GPU, on the list with the leader first. Then the
leader gets SIGKILL; the blocker is released and a probe job submitted, both through the
list; we time until the other server reports itself leader (``procplan_cycle_leader``) and
until the probe runs. The waiting ``procplan run`` must then get its GPU and run its
command. The killed server is restarted on its port, so the list stays right.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from procplan.client import ApiError, ClientError, ProcPlanClient, ServerUnreachable
from procplan.testing import AgentProcess, ServerProcess, wait_until

TOKEN = "failover-e2e-agent-token"
NODE = "node-ha"
GPUS = 4
SETTINGS = {
    "PROCPLAN_AGENT_TOKEN": TOKEN,
    "PROCPLAN_LOCAL_AGENT": "off",
    "PROCPLAN_CYCLE_TICK_S": "0.25",
}
PRINTED = "failover-run-ok"


@dataclass(frozen=True)
class Kill:
    leader_s: float  # from SIGKILL until the other server says it holds the cycle lock
    job_s: float  # from SIGKILL until a job submitted after it runs


@dataclass
class Watch:
    """What the background threads saw."""

    acknowledged: list[int] = field(default_factory=list)  # booking ids answered 2xx
    unanswered: int = 0  # bookings whose answer was lost with the server (not acknowledged)
    refused: list[str] = field(default_factory=list)
    double_claims: list[str] = field(default_factory=list)
    samples: int = 0


def leader_flag(url: str) -> bool | None:
    """``procplan_cycle_leader`` of one server; ``None`` when it does not answer."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=2.0).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("procplan_cycle_leader "):
            return float(line.split()[1]) == 1.0
    return None


class Rig:
    def __init__(self, pg_url: str, tmp: Path) -> None:
        self.tmp = tmp
        env = {**SETTINGS, "PROCPLAN_DB_URL": pg_url}
        self.servers = [
            ServerProcess([], env=env, log_file=tmp / f"server-{name}.log") for name in "ab"
        ]
        self.urls = ",".join(server.url for server in self.servers)
        self.agent = AgentProcess(
            self.urls, TOKEN, NODE, tmp / "agent-state", tmp / "agent.log", gpus=GPUS
        )
        self.watch = Watch()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.client = ProcPlanClient(self.urls, discover=False)

    # -- life ------------------------------------------------------------------------------

    def start(self) -> None:
        for server in self.servers:  # one after the other: the first one migrates
            server.start()
        self.agent.start()
        wait_until(self._node_up, timeout=30, step=0.1, what="the agent's node online")
        for target in (self._book, self._sample):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        self.agent.stop()
        for server in self.servers:
            server.stop()
        self.client.close()

    def _node_up(self) -> bool:
        with contextlib.suppress(ClientError):
            for node in self.client.nodes.list().get("nodes") or []:
                if node.get("id") == NODE and node.get("state") == "online":
                    return True
        return False

    # -- one kill --------------------------------------------------------------------------

    def leader(self) -> ServerProcess:
        def exactly_one() -> ServerProcess | None:
            flags = [leader_flag(server.url) for server in self.servers]
            return self.servers[flags.index(True)] if flags.count(True) == 1 else None

        return wait_until(exactly_one, timeout=15, step=0.05, what="exactly one leader")

    def kill_leader(self) -> Kill:
        leader = self.leader()
        other = next(server for server in self.servers if server is not leader)
        blocker = self._submit(GPUS)
        wait_until(lambda: self._state(blocker) == "running", 15, 0.05, "the blocker to run")
        waiter = self._procplan_run(f"{leader.url},{other.url}")
        try:
            wait_until(lambda: self._pending() == 1, 15, 0.05, "procplan run's job to wait")
            assert leader.proc is not None
            leader.proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            leader.proc.wait(10)
            self.client.jobs.release(blocker, 0)  # through the list: reaches the other server
            probe = self._submit(1)
            wait_until(lambda: leader_flag(other.url), 15, 0.02, "the other server to lead")
            leader_s = time.monotonic() - killed_at
            wait_until(lambda: self._state(probe) == "running", 15, 0.02, "the probe to run")
            job_s = time.monotonic() - killed_at
            out, err = waiter.communicate(timeout=30)
            assert waiter.returncode == 0 and PRINTED in out, err
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait(10)
        self.client.jobs.release(probe, 0)
        leader.start()  # the same port: the list stays right
        return Kill(leader_s, max(leader_s, job_s))

    def _submit(self, gpus: int) -> str:
        body = {"kind": "interactive", "gpu_count": gpus, "node_id": NODE, "command": ["x"]}
        return self.client.jobs.submit(body).job.id

    def _state(self, job_id: str) -> str | None:
        with contextlib.suppress(ClientError):
            return self.client.jobs.get(job_id).state
        return None

    def _pending(self) -> int:
        with contextlib.suppress(ClientError):
            return len(self.client.jobs.list(state="pending").jobs)
        return -1

    def _procplan_run(self, urls: str) -> subprocess.Popen[str]:
        """The real command, waiting for a GPU the blocker holds; ``urls`` names the leader
        first, so the kill breaks its long poll."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROCPLAN_")}
        command = [sys.executable, "-c", f"print({PRINTED!r})"]
        return subprocess.Popen(
            [sys.executable, "-m", "procplan.cli.main", "run", "--node", NODE, "--", *command],
            env={**env, "PROCPLAN_URL": urls},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    # -- the background threads -----------------------------------------------------------

    def _book(self) -> None:
        first = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
        first += timedelta(days=30)
        hour = 0
        with ProcPlanClient(self.urls, discover=False) as client:
            while not self._stop.wait(0.05):
                start = first + timedelta(hours=hour)
                hour += 1
                try:
                    made = client.bookings.create(NODE, start, duration_minutes=60, gpu_count=1)
                except ServerUnreachable:
                    self.watch.unanswered += 1  # maybe made, never acknowledged
                except ApiError as exc:
                    self.watch.refused.append(f"{exc.status} {exc.message}")
                else:
                    self.watch.acknowledged.append(int(made["booking"]["id"]))

    def _sample(self) -> None:
        with ProcPlanClient(self.urls, discover=False) as client:
            while not self._stop.wait(0.05):
                try:
                    running = client.jobs.list(state="running", limit=1000).jobs
                except ClientError:
                    continue
                held = [gpu for job in running for gpu in job.allocated_gpus]
                if len(held) != len(set(held)):
                    self.watch.double_claims.append(", ".join(sorted(held)))
                self.watch.samples += 1

    def lost_writes(self) -> list[int]:
        """Acknowledged bookings that the database does not have."""
        lost = []
        for booking_id in self.watch.acknowledged:
            try:
                self.client.bookings.get(booking_id)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                lost.append(booking_id)
        return lost


@contextlib.contextmanager
def failover_rig(pg_url: str, tmp: Path) -> Iterator[Rig]:
    rig = Rig(pg_url, tmp)
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()
