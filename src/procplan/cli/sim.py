"""``procplan sim``: replay a job trace through the production planner (issue #15).

Unlike the other commands this one talks to no server: it reads a trace file, simulates the
cluster in ``procplan.sim`` (pure, deterministic) and prints the metrics. The wall-clock speed
of the replay is measured here, because the simulation itself never reads a clock.
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
from procplan.sim.cluster import parse_nodes
from procplan.sim.engine import SIM_POLICY, LimitMode, simulate
from procplan.sim.metrics import summarize
from procplan.sim.traces import TraceFormat, load_trace

# (key, label, unit) of the metrics table, in print order.
_ROWS = (
    ("jobs", "jobs finished", ""),
    ("skipped", "jobs skipped (too wide)", ""),
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


def sim(
    trace: Annotated[Path, typer.Argument(help="Trace file (CSV)", exists=True, dir_okay=False)],
    format: Annotated[TraceFormat, typer.Option("--format", help="Trace format")],
    nodes: Annotated[str, typer.Option(help="Cluster: COUNTxGPUS[,COUNTxGPUS...]")] = "69x8",
    limit: Annotated[
        int | None, typer.Option(help="Replay only the first N jobs by submit time", min=1)
    ] = None,
    limits: Annotated[
        LimitMode,
        typer.Option(help="Time limits: oracle (the real duration) or none (open-ended)"),
    ] = LimitMode.ORACLE,
    drain_after: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Seconds before a blocked job with no known start drains its GPUs "
            "(default: the server's default, 0; a huge value turns draining off, ADR 0015)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Replay a job trace through the scheduler on a simulated cluster and print metrics."""
    try:
        topology = parse_nodes(nodes)
    except ValueError as exc:
        usage_error(str(exc), "--nodes")
    try:
        jobs = load_trace(trace, format, limit)
    except ValueError as exc:
        usage_error(f"{trace}: {exc}", "TRACE")
    began = time.perf_counter()
    policy = SIM_POLICY if drain_after is None else replace(SIM_POLICY, drain_after_s=drain_after)
    result = simulate(jobs, topology, limits, policy)
    wall = time.perf_counter() - began
    metrics: dict[str, float] = {
        **summarize(result.records, topology.gpu_count),
        "skipped": float(len(result.skipped)),
        "unplaced": float(len(result.unplaced)),
        "events": float(result.events),
        "plans": float(result.plans),
        "wall_s": wall,
        "events_per_s": result.events / wall if wall > 0 else 0.0,
    }
    if as_json:
        out = {
            "trace": str(trace),
            "format": str(format),
            "nodes": nodes,
            "gpus": topology.gpu_count,
            "limits": str(limits),
            "metrics": metrics,
        }
        typer.echo(json.dumps(out, indent=2))
        return
    table = Table(title=f"{trace.name}: {len(jobs)} jobs on {nodes} ({limits} limits)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label, unit in _ROWS:
        table.add_row(label, _cell(metrics[key], unit))
    console().print(table)
