"""Benchmark of the trace-driven simulator (issue #15): speed on the whole Philly trace, and
the policies side by side on a contended cluster.

1. Speed: all 82,247 jobs of ``philly_pollux_jobs.csv`` replayed through the production
   planner on Helios' per-VC partitions (11 VCs, 352 × 8 GPUs; 18 jobs of the four tiny VCs
   have no partition). Target: < 5 minutes on the 2-core reference machine.
2. Quality: the first ``--limit`` jobs (default 5,000: September 2017 and its burst of
   wide jobs) on a contended uniform cluster (``--nodes``, default 69 × 8, 552 GPUs), every
   policy of ``procplan.sim.policies`` (time limits = real durations),
   with the ratios the issue sets targets for: ProcPlan's average JCT over FIFO's (≤ 0.5),
   over the best of SJF/SRTF/LAS (≤ 1.3), and Jain's fairness over VCs against FIFO's.

Run: ``python bench/simulator.py [--traces DIR] [--nodes 69x8] [--limit N] [--skip-speed]``;
the last line is the summary. Times are wall-clock seconds of this process.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _servers import machine
from procplan.sim.cluster import parse_nodes, parse_vc_nodes, partition_by_group
from procplan.sim.engine import LimitMode
from procplan.sim.metrics import summarize
from procplan.sim.policies import POLICIES, PolicyName
from procplan.sim.runner import Scenario, run
from procplan.sim.traces import TraceFormat, load_trace

ROOT = Path(__file__).resolve().parent.parent
ORACLES = (PolicyName.SJF, PolicyName.SRTF, PolicyName.LAS)


def speed(traces: Path) -> tuple[int, float, float]:
    """Jobs replayed, wall seconds and events per second of the whole trace on Helios' VCs."""
    jobs = load_trace(traces / "philly_pollux_jobs.csv", TraceFormat.PHILLY)
    vc_nodes = parse_vc_nodes((traces / "philly_vc_nodes_helios_qssf.csv").read_text("utf-8"))
    partitions, _ = partition_by_group(jobs, vc_nodes)
    began = time.perf_counter()
    result = run(partitions, Scenario())
    wall = time.perf_counter() - began
    return len(result.records), wall, result.events / wall


def quality(traces: Path, nodes: str, limit: int | None) -> dict[str, dict[str, float]]:
    jobs = load_trace(traces / "philly_pollux_jobs.csv", TraceFormat.PHILLY, limit)
    topology = parse_nodes(nodes)
    out: dict[str, dict[str, float]] = {}
    for name, policy in POLICIES.items():
        began = time.perf_counter()
        result = run([("all", jobs, topology)], Scenario(LimitMode.ORACLE, policy))
        wall = time.perf_counter() - began
        out[name] = {**summarize(result.records, topology.gpu_count), "wall_s": wall}
        m = out[name]
        print(
            f"{name:15s} JCT avg {m['jct_avg']:9.0f} s  median {m['jct_median']:7.0f} s  "
            f"queue avg {m['queue_avg']:8.0f} s  wide max {m['wide_queue_max']:8.0f} s  "
            f"fairness {m['fairness']:.3f}  util {m['utilization']:.3f}  {wall:6.1f} s",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=Path, default=ROOT.parent / "shared" / "traces")
    parser.add_argument("--nodes", default="69x8")
    parser.add_argument("--limit", type=int, default=5000)
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    summary = []
    if not args.skip_speed:
        jobs, wall, rate = speed(args.traces)
        print(f"whole trace on Helios' VCs: {jobs:,} jobs in {wall:.1f} s ({rate:,.0f} events/s)")
        summary += [f"full_jobs={jobs}", f"full_wall_s={wall:.1f}", f"events_per_s={rate:.0f}"]
    runs = quality(args.traces, args.nodes, args.limit)
    ours, fifo = runs[PolicyName.PROCPLAN], runs[PolicyName.FIFO]
    best = min(runs[p]["jct_avg"] for p in ORACLES)
    short = runs[PolicyName.PROCPLAN_SHORT]
    summary += [
        f"jct_vs_fifo={ours['jct_avg'] / fifo['jct_avg']:.2f}",
        f"jct_vs_best={ours['jct_avg'] / best:.2f}",
        f"short_jct_vs_fifo={short['jct_avg'] / fifo['jct_avg']:.2f}",
        f"short_jct_vs_best={short['jct_avg'] / best:.2f}",
        f"fairness={ours['fairness']:.3f}",
        f"short_fairness={short['fairness']:.3f}",
        f"fifo_fairness={fifo['fairness']:.3f}",
        f"wide_max_s={ours['wide_queue_max']:.0f}",
        f"fifo_wide_max_s={fifo['wide_queue_max']:.0f}",
    ]
    print("SUMMARY " + " ".join(summary))


if __name__ == "__main__":
    main()
