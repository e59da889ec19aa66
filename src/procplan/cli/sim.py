"""``procplan sim``: replay a job trace through the production planner (issue #15).

Unlike the other commands this one talks to no server: it reads a trace file, simulates the
cluster in ``procplan.sim`` (pure, deterministic) and prints the metrics, one column per
policy. The wall-clock speed of each replay is measured here, because the simulation itself
never reads a clock. Plots (``--plot DIR``) need the ``plot`` extra.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from procplan.cli.common import console, usage_error
from procplan.core.model import Topology
from procplan.core.timeutil import HOUR
from procplan.sim.cluster import (
    Partition,
    parse_alibaba_nodes,
    parse_nodes,
    parse_philly_machines,
    parse_vc_nodes,
    partition_by_group,
)
from procplan.sim.engine import LimitMode, SimResult
from procplan.sim.metrics import summarize
from procplan.sim.policies import POLICIES, PolicyName
from procplan.sim.runner import Scenario, run
from procplan.sim.traces import TraceFormat, TraceJob, load_alibaba, load_trace

# (key, label, unit) of the metrics table, in print order.
_ROWS = (
    ("jobs", "jobs finished", ""),
    ("unplaced", "jobs never placed", ""),
    ("jct_avg", "JCT average", "s"),
    ("jct_median", "JCT median", "s"),
    ("jct_p99", "JCT p99", "s"),
    ("queue_avg", "queueing delay average", "s"),
    ("queue_max", "queueing delay max", "s"),
    ("wide_queue_max", "queueing delay max, jobs of 8+ GPUs", "s"),
    ("makespan", "makespan", "s"),
    ("utilization", "GPU utilization", ""),
    ("fairness", "Jain's fairness (group slowdown)", ""),
    ("preempted", "jobs preempted at least once", ""),
    ("lost_runs", "runs lost to node failures", ""),
    ("bookings_honoured", "bookings honoured", ""),
    ("events", "events", ""),
    ("plans", "planner calls", ""),
    ("wall_s", "simulation wall time", "s"),
    ("events_per_s", "simulation speed", "events/s"),
)


def _cell(value: float, unit: str) -> str:
    if float(value).is_integer():
        text = f"{int(value):,}"
    else:
        text = f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{text} {unit}".rstrip()


def _cluster(nodes: str, cluster_file: Path | None) -> Topology:
    """``--cluster FILE`` (a Philly machine list or an Alibaba node list, told apart by the
    header) or else ``--nodes SPEC``."""
    try:
        if cluster_file is None:
            return parse_nodes(nodes)
        text = cluster_file.read_text(encoding="utf-8")
        header = text.split("\n", 1)[0]
        return parse_philly_machines(text) if "machineId" in header else parse_alibaba_nodes(text)
    except ValueError as exc:
        usage_error(str(exc), "--nodes" if cluster_file is None else "--cluster")


def _jobs(trace: Path, format: TraceFormat, limit: int | None) -> tuple[list[TraceJob], int]:
    """The trace's jobs and how many rows were not jobs (Alibaba pods without GPUs or never
    scheduled)."""
    try:
        if format is TraceFormat.ALIBABA:
            jobs, skipped = load_alibaba(trace, limit)
            return jobs, skipped.total
        return load_trace(trace, format, limit), 0
    except ValueError as exc:
        usage_error(f"{trace}: {exc}", "TRACE")


def _partitions(
    jobs: list[TraceJob], topology: Topology, vc_nodes: Path | None
) -> tuple[list[Partition], int]:
    """One partition per VC of ``--vc-nodes`` (Helios' setup), or the whole cluster; and how
    many jobs belong to no partition."""
    if vc_nodes is None:
        return [("all", jobs, topology)], 0
    try:
        parts, dropped = partition_by_group(jobs, parse_vc_nodes(vc_nodes.read_text("utf-8")))
    except ValueError as exc:
        usage_error(f"{vc_nodes}: {exc}", "--vc-nodes")
    return parts, len(dropped)


def _metrics(result: SimResult, gpus: int, wall: float) -> dict[str, float]:
    booked = result.bookings
    honoured = (booked - len(result.bookings_broken)) / booked if booked else 1.0
    return {
        **summarize(result.records, gpus),
        "unplaced": float(len(result.unplaced)),
        "skipped": float(len(result.skipped)),
        "lost_runs": float(result.lost_runs),
        "bookings": float(booked),
        "bookings_honoured": honoured,
        "events": float(result.events),
        "plans": float(result.plans),
        "wall_s": wall,
        "events_per_s": result.events / wall if wall > 0 else 0.0,
    }


def sim(
    trace: Annotated[Path, typer.Argument(help="Trace file (CSV)", exists=True, dir_okay=False)],
    format: Annotated[TraceFormat, typer.Option("--format", help="Trace format")],
    nodes: Annotated[str, typer.Option(help="Cluster: COUNTxGPUS[,COUNTxGPUS...]")] = "69x8",
    cluster: Annotated[
        Path | None,
        typer.Option(
            help="Cluster from a Philly machine list or an Alibaba node list (instead of --nodes)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    vc_nodes: Annotated[
        Path | None,
        typer.Option(
            help="Per-VC partitions of 8-GPU nodes, as Helios simulated Philly (vc,node num)",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Replay only the first N jobs by submit time", min=1)
    ] = None,
    limits: Annotated[
        LimitMode,
        typer.Option(help="Time limits: oracle (the real duration) or none (open-ended)"),
    ] = LimitMode.ORACLE,
    policy: Annotated[
        list[PolicyName] | None,
        typer.Option("--policy", help="Policy to replay (repeat to compare; default procplan)"),
    ] = None,
    drain_after: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seconds before a blocked job with no known start drains its GPUs "
            "(default: the server's default, 0; a huge value turns draining off, ADR 0015)",
        ),
    ] = None,
    bookings: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of GPUs booked each day, in day blocks")
    ] = 0.0,
    mtbf_hours: Annotated[
        float, typer.Option(min=0.0, help="Node failures: mean hours between them (0: none)")
    ] = 0.0,
    repair_hours: Annotated[float, typer.Option(min=0.0, help="Hours a node stays down")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the booking load and the failures")] = 1,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write jct_cdf.svg and queue.svg here (needs procplan[plot])"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Replay a job trace through the scheduler on a simulated cluster and print metrics."""
    topology = _cluster(nodes, cluster)
    jobs, not_jobs = _jobs(trace, format, limit)
    partitions, dropped = _partitions(jobs, topology, vc_nodes)
    gpus = sum(t.gpu_count for _, _, t in partitions)
    results: dict[str, SimResult] = {}
    metrics: dict[str, dict[str, float]] = {}
    for name in policy or [PolicyName.PROCPLAN]:
        chosen = POLICIES[name]
        if drain_after is not None:
            chosen = replace(chosen, planner=replace(chosen.planner, drain_after_s=drain_after))
        scenario = Scenario(
            limits, chosen, bookings, round(mtbf_hours * HOUR), round(repair_hours * HOUR), seed
        )
        began = time.perf_counter()
        results[name] = run(partitions, scenario)
        metrics[name] = _metrics(results[name], gpus, time.perf_counter() - began)
    where = vc_nodes.name if vc_nodes is not None else (cluster.name if cluster else nodes)
    if plot is not None:
        _plot(plot, results, f"{trace.name}: {len(jobs):,} jobs on {where}")
    if as_json:
        out = {
            "trace": str(trace),
            "format": str(format),
            "cluster": where,
            "gpus": gpus,
            "limits": str(limits),
            "not_jobs": not_jobs,
            "dropped": dropped,
            "runs": metrics,
        }
        typer.echo(json.dumps(out, indent=2))
        return
    _print(metrics, f"{trace.name}: {len(jobs):,} jobs on {where}, {gpus:,} GPUs ({limits} limits)")
    notes = [f"{not_jobs:,} rows were not jobs (no GPU, never scheduled)"] if not_jobs else []
    skipped = next(iter(metrics.values()))["skipped"]
    notes += [f"{int(skipped):,} jobs skipped: wider than the cluster"] if skipped else []
    notes += [f"{dropped:,} jobs of VCs without a partition left out"] if dropped else []
    for line in notes:
        console().print(line)


def _print(metrics: dict[str, dict[str, float]], title: str) -> None:
    table = Table(title=title)
    table.add_column("metric")
    for name in metrics:
        table.add_column(name, justify="right")
    for key, label, unit in _ROWS:
        table.add_row(label, *(_cell(m[key], unit) for m in metrics.values()))
    console().print(table)


def _plot(directory: Path, results: dict[str, SimResult], title: str) -> None:
    from procplan.cli.sim_plots import PlotsUnavailableError, plot_jct_cdf, plot_queue

    directory.mkdir(parents=True, exist_ok=True)
    try:
        plot_jct_cdf({n: r.records for n, r in results.items()}, directory / "jct_cdf.svg", title)
        plot_queue({n: r.samples for n, r in results.items()}, directory / "queue.svg", title)
    except PlotsUnavailableError as exc:
        usage_error(str(exc), "--plot")
