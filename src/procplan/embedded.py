"""Agents the server runs in-process (ADR 0006): this host's GPUs, or ``--demo``'s fakes.

``procplan server`` without a config discovers this machine's GPUs with the same agent code a
cluster node runs, talking to the server over loopback HTTP with a token only this server
knows; ``--demo`` runs one agent per demo node on simulated GPUs, so batch jobs really run
and the board shows live nodes.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procplan.agent.daemon import AgentConfig, build_reader, run_agent
from procplan.agent.fake import FakeGpuReader
from procplan.config import Settings, default_data_dir
from procplan.core.jobs import Job, JobKind
from procplan.core.model import Topology
from procplan.core.readings import GpuProcess, GpuReader, GpuReading
from procplan.core.topology import demo_topology
from procplan.service.nodes import NodeService
from procplan.service.topology_file import read_topology_file

LOG = logging.getLogger("procplan.embedded")
DEMO_MEMORY_MB = {"A100": 40_960}  # the demo's A100s are the 40 GB kind


@dataclass(frozen=True)
class EmbeddedAgent:
    config: AgentConfig
    reader: GpuReader
    reader_name: str


def demo_cluster(local_node: str, fake_gpus: int = 8) -> Topology:
    """``--demo``: the two simulated nodes plus this host with ``fake_gpus`` simulated GPUs,
    so ``procplan run`` and ``srun`` work on a machine without GPUs."""
    local = FakeGpuReader(fake_gpus, host=local_node).node(local_node)
    return Topology((*demo_topology().nodes, local))


class DemoGpuReader(FakeGpuReader):
    """``--demo``'s simulated GPUs, which look busy while a job runs on them: utilization,
    memory, temperature and power rise, and the job's process shows on its GPUs (so the board,
    ``procplan nodes`` and ``/metrics`` have something to show)."""

    def __init__(self, busy: Callable[[], list[tuple[int, Job]]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._busy = busy  # (GPU index, running job) pairs of this node

    def readings(self) -> list[GpuReading]:
        base = super().readings()
        busy = {index for index, _ in self._busy()}
        tick = int(time.time() // 2)
        return [
            dataclasses.replace(
                r,
                utilization_pct=float(70 + (tick * 7 + r.index * 11) % 29),
                memory_used_mb=(r.memory_total_mb or 0) * 6 // 10,
                temperature_c=62.0 + r.index % 5,
                power_w=310.0 + 10 * (r.index % 4),
            )
            if r.index in busy
            else r
            for r in base
        ]

    def processes(self) -> list[GpuProcess]:
        found = list(super().processes())
        for index, job in self._busy():
            if job.pid is not None:  # launched by the agent: its leader process holds memory
                found.append(
                    GpuProcess(self._uuid(index), job.pid, self.memory_mb * 6 // 10,
                               job.user, job.name or " ".join(job.command))
                )  # fmt: skip
        return found


def busy_gpus(nodes: NodeService, node_id: str) -> Callable[[], list[tuple[int, Job]]]:
    """The (GPU index, job) pairs of the batch jobs running on ``node_id`` now."""

    def busy() -> list[tuple[int, Job]]:
        node = nodes.bookings.recent_topology().node(node_id)
        if node is None:
            return []
        index = {gpu.id: gpu.index for gpu in node.gpus}
        return [
            (index[g], job)
            for job in nodes.running_by_node().get(node_id, [])
            if job.kind is JobKind.BATCH
            for g in job.gpu_ids
            if g in index
        ]

    return busy


def server_url(settings: Settings) -> str:
    host = settings.host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if settings.tls else 'http'}://{host}:{settings.port}"


def own_certificate(certfile: Path) -> ssl.SSLContext:
    """TLS for an embedded agent: it trusts exactly its server's own certificate (the leaf
    in ``certfile`` is a trust anchor, whoever issued it) and checks no name, because it
    reaches the server by address on this host, which the certificate need not list."""
    context = ssl.create_default_context(cafile=str(certfile))
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def state_dir(settings: Settings, node_id: str) -> Path:
    """Job state files of an embedded agent: next to a SQLite database file (so each
    database — each test — has its own), else in the data directory."""
    if settings.agent_state_dir is not None:
        return settings.agent_state_dir / node_id
    url = settings.resolved_db_url()
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///") + ".agents") / node_id
    return default_data_dir() / "agents" / node_id


def embedded_agents(
    settings: Settings, token: str, nodes: NodeService | None = None
) -> list[EmbeddedAgent]:
    """The agents this server should run (none with ``local_agent = "off"``); ``nodes`` lets
    the demo's GPUs look busy under running jobs."""
    if settings.local_agent == "off":
        return []
    url = server_url(settings)
    tls = own_certificate(settings.ssl_certfile) if settings.ssl_certfile is not None else None

    def config(node_id: str) -> AgentConfig:
        return AgentConfig(
            server_url=url,
            token=token,
            node_id=node_id,
            interval_s=settings.agent_interval_s,
            state_dir=state_dir(settings, node_id),
            address="127.0.0.1",
            # The server decided who may run as root when it accepted the job (run_as.py):
            # the demo runs every job as the server's own user, root or not.
            allow_root_jobs=settings.allow_root_jobs or settings.demo,
            # The demo's jobs end with the server (a demo leaves no processes behind).
            stop_jobs_on_exit=settings.demo,
            tls=tls,
        )

    if settings.demo:
        return [
            EmbeddedAgent(
                config(node.id),
                DemoGpuReader(
                    busy_gpus(nodes, node.id) if nodes is not None else list,
                    count=len(node.gpus),
                    host=node.id,
                    model=node.gpus[0].kind,
                    memory_mb=DEMO_MEMORY_MB.get(node.gpus[0].kind, 81_559),
                ),
                "fake",
            )
            for node in demo_cluster(settings.local_node_id).nodes
            if node.gpus
        ]
    local = settings.local_node_id
    if settings.config is not None:
        named = {n.id for n in read_topology_file(settings.config).nodes}
        if local not in named:
            return []
    reader, name = build_reader("auto", host=local)
    try:
        found = len(reader.devices())
    except Exception as exc:  # a broken driver: say so, serve anyway
        LOG.warning("reading this machine's GPUs failed: %s", exc)
        found = 0
    if not found:
        reader.close()
        LOG.warning("no NVIDIA GPUs found on this machine: it is not added as a node")
        return []
    LOG.info("this machine: %d GPU(s) through %s, node id %s", found, name, local)
    return [EmbeddedAgent(config(local), reader, name)]


def start_agents(agents: list[EmbeddedAgent]) -> Callable[[], None]:
    """Run each agent in a daemon thread; returns the function that stops them all (their
    jobs keep running, as with a real agent, except ``--demo``'s: ``stop_jobs_on_exit``).
    Calling it again, from any thread, waits for the same stop."""
    stop = threading.Event()
    threads = []
    for agent in agents:
        thread = threading.Thread(
            target=run_agent,
            args=(agent.config, stop),
            kwargs={"reader": agent.reader, "reader_name": agent.reader_name},
            name=f"procplan-agent-{agent.config.node_id}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)

    def stop_all() -> None:
        stop.set()
        for thread in threads:
            thread.join(5)

    return stop_all
