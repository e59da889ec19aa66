"""Prometheus metrics: GPU gauges under the DCGM exporter's names, and the scheduler's own.

The GPU gauges use the names and labels of NVIDIA's dcgm-exporter (``DCGM_FI_DEV_GPU_UTIL``
with ``gpu``, ``UUID``, ``device``, ``modelName``, ``Hostname``) so that existing Grafana
dashboards work unchanged; a ``node`` label is added for clusters whose host names differ
from node ids. Gauges are computed at scrape time from the same document as
``/api/v1/nodes`` (and the queue: depth, and the longest wait so far of a pending job);
histograms (wait time, cycle duration and the time of each of its phases)
are observed as things happen. ``procplan_cycle_leader`` says whether this server holds the
cycle lock (ADR 0021): with several servers on one database exactly one shows 1, and a
dashboard sees a failover as that 1 moving.
Each server gets its own registry, so several servers in one process (tests) do not clash.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from procplan.core.jobs import Job
from procplan.core.timeutil import Instant
from procplan.service.cycle_ports import Phase
from procplan.service.jobs import JobService
from procplan.service.node_views import cluster_view
from procplan.service.nodes import NodeService
from procplan.wire.nodes import cluster_json

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (metric name, help, field of the GPU view, scale)
DCGM_GAUGES = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "utilization_pct"),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "memory_used_mb"),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "memory_free_mb"),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "temperature_c"),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "power_w"),
)
DCGM_LABELS = ["gpu", "UUID", "device", "modelName", "Hostname", "node"]
WAIT_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600)
CYCLE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
PHASE_BUCKETS = (0.0005, 0.001, 0.0025, *CYCLE_BUCKETS)


class SchedulerMetrics:
    """The registry of one server: live gauges plus the cycle's histograms."""

    def __init__(
        self, jobs: JobService, nodes: NodeService, leading: Callable[[], bool] | None = None
    ) -> None:
        """``leading``: whether this process holds the cycle lock now (the gauge reads it)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.wait_seconds = Histogram(
            "procplan_job_wait_seconds",
            "Time jobs waited in the queue before they started.",
            ["kind"],
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.cycle_seconds = Histogram(
            "procplan_cycle_duration_seconds",
            "Duration of scheduling cycles (snapshot, plan, apply).",
            buckets=CYCLE_BUCKETS,
            registry=self.registry,
        )
        phase_seconds = Histogram(
            "procplan_cycle_phase_seconds",
            "Time scheduling cycles spent in each phase (housekeeping, snapshot, plan, apply, "
            "publish).",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=self.registry,
        )
        self._phase_seconds = {phase: phase_seconds.labels(phase.value) for phase in Phase}
        self.registry.register(_LiveCollector(jobs, nodes))
        if leading is not None:
            self.registry.register(_LeaderCollector(leading))

    def cycle(self, seconds: float) -> None:
        self.cycle_seconds.observe(seconds)

    def phases(self, seconds: Mapping[Phase, float]) -> None:
        for phase, spent in seconds.items():
            self._phase_seconds[phase].observe(spent)

    def started(self, started: Sequence[Job], now: Instant) -> None:
        for job in started:
            self.wait_seconds.labels(job.kind.value).observe(max(now - job.submitted_at, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _LiveCollector(Collector):
    """Gauges computed at scrape time."""

    def __init__(self, jobs: JobService, nodes: NodeService) -> None:
        self.jobs = jobs
        self.nodes = nodes

    def collect(self) -> Iterable[Metric]:
        document = cluster_json(cluster_view(self.nodes))
        yield from _gpu_gauges(document["nodes"])
        yield from _node_gauges(document["nodes"])
        yield from self._queue_gauges()

    def _queue_gauges(self) -> Iterable[Metric]:
        pending, running = self.jobs.active()
        depth = GaugeMetricFamily(
            "procplan_queue_pending_jobs", "Pending jobs by reason.", labels=["reason"]
        )
        for reason, n in sorted(Counter(_reason(j) for j in pending).items()):
            depth.add_metric([reason], n)
        yield depth
        yield _oldest_pending(pending, self.jobs.clock.now())
        yield GaugeMetricFamily(
            "procplan_jobs_running", "Jobs holding GPUs now.", value=len(running)
        )
        by_tenant = GaugeMetricFamily(
            "procplan_gpus_allocated",
            "GPUs held by running jobs, by tenant.",
            labels=["tenant"],
        )
        held: Counter[str] = Counter()
        for job in running:
            held[job.tenant] += len(job.gpu_ids)
        for tenant in sorted(set(held) | {t.id for t in self.jobs.list_tenants()}):
            by_tenant.add_metric([tenant], held.get(tenant, 0))
        yield by_tenant


class _LeaderCollector(Collector):
    """``procplan_cycle_leader``: 1 in the process that runs the scheduling cycle, else 0."""

    def __init__(self, leading: Callable[[], bool]) -> None:
        self.leading = leading

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(
            "procplan_cycle_leader",
            "1 when this server holds the cycle lock and runs the scheduling cycle, else 0.",
            value=1.0 if self.leading() else 0.0,
        )


def _oldest_pending(pending: Sequence[Job], now: Instant) -> Metric:
    """How long the longest-waiting pending job of each reason has waited so far (the wait
    histogram only sees jobs once they start): what a "queue wait too long" alert reads."""
    oldest = GaugeMetricFamily(
        "procplan_queue_oldest_pending_seconds",
        "Seconds the longest-waiting pending job has waited so far, by reason.",
        labels=["reason"],
    )
    waited: dict[str, int] = {}
    for job in pending:
        reason = _reason(job)
        waited[reason] = max(waited.get(reason, 0), max(now - job.submitted_at, 0))
    for reason, seconds in sorted(waited.items()):
        oldest.add_metric([reason], float(seconds))
    return oldest


def _reason(job: Job) -> str:
    return job.reason.value if job.reason is not None else "None"


def _gpu_gauges(nodes: list[dict[str, object]]) -> Iterable[Metric]:
    families = {
        field: GaugeMetricFamily(name, doc, labels=DCGM_LABELS) for name, doc, field in DCGM_GAUGES
    }
    for node in nodes:
        if node["state"] != "online":
            continue
        for gpu in node["gpus"]:  # type: ignore[attr-defined]
            used, total = gpu["memory_used_mb"], gpu["memory_total_mb"]
            values = dict(gpu)
            values["memory_free_mb"] = None if used is None or total is None else total - used
            labels = [
                str(gpu["index"]),
                gpu["uuid"] or "",
                f"nvidia{gpu['index']}",
                gpu["model"],
                str(node["hostname"] or node["id"]),
                str(node["id"]),
            ]
            for field, family in families.items():
                if values.get(field) is not None:
                    family.add_metric(labels, float(values[field]))
    yield from families.values()


def _node_gauges(nodes: list[dict[str, object]]) -> Iterable[Metric]:
    up = GaugeMetricFamily(
        "procplan_node_up", "1 when the node's agent reports, 0 when offline.", labels=["node"]
    )
    foreign = GaugeMetricFamily(
        "procplan_gpu_foreign",
        "1 when the GPU runs processes the scheduler did not start.",
        labels=["node", "gpu"],
    )
    flagged = GaugeMetricFamily(
        "procplan_gpu_flagged",
        "1 when the GPU is flagged (unbooked_use, idle_booking).",
        labels=["node", "gpu", "flag"],
    )
    for node in nodes:
        if node["state"] == "unmanaged":
            continue
        up.add_metric([str(node["id"])], 1.0 if node["state"] == "online" else 0.0)
        for gpu in node["gpus"]:  # type: ignore[attr-defined]
            foreign.add_metric([str(node["id"]), gpu["id"]], 1.0 if gpu["foreign"] else 0.0)
            for flag in gpu["flags"]:
                flagged.add_metric([str(node["id"]), gpu["id"], flag], 1.0)
    yield up
    yield foreign
    yield flagged
