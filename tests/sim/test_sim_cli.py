"""``procplan sim`` end to end on the smoke trace (no server involved)."""

from __future__ import annotations

import json
from pathlib import Path

from sim_kit import needs_trace, trace_file
from typer.testing import CliRunner

from procplan.cli.main import app

SMOKE = str(trace_file("tiresias_60_job.csv"))

# The smoke trace ships with the tests too; the larger ones skip where they are absent.
needs_traces = needs_trace("tiresias_60_job.csv")


@needs_traces
def test_json_output() -> None:
    args = ["sim", SMOKE, "--format", "tiresias", "--nodes", "4x4", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["gpus"], out["limits"], list(out["runs"])) == (16, "oracle", ["procplan"])
    metrics = out["runs"]["procplan"]
    assert (metrics["jobs"], metrics["skipped"], metrics["unplaced"]) == (60, 0, 0)
    assert metrics["events"] == 120 and metrics["events_per_s"] > 0
    assert 0 < metrics["utilization"] <= 1


@needs_traces
def test_table_output_with_limit() -> None:
    args = ["sim", SMOKE, "--format", "tiresias", "--nodes", "1x8", "--limit", "5"]
    args += ["--limits", "none"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 jobs on 1x8, 8 GPUs (none limits)" in result.output
    assert "JCT p99" in result.output


@needs_traces
def test_bad_nodes_and_bad_trace_are_usage_errors(tmp_path: Path) -> None:
    bad_nodes = CliRunner().invoke(app, ["sim", SMOKE, "--format", "tiresias", "--nodes", "8"])
    assert bad_nodes.exit_code == 2 and "bad node spec" in bad_nodes.output
    trace = tmp_path / "t.csv"
    trace.write_text("job_id,num_gpu,submit_time,duration\n0,x,0,10\n")
    wide = {"COLUMNS": "300"}  # Rich wraps the error box at the terminal width
    bad_row = CliRunner().invoke(app, ["sim", str(trace), "--format", "tiresias"], env=wide)
    assert bad_row.exit_code == 2 and "line 2" in bad_row.output


@needs_traces
def test_policies_side_by_side_with_bookings_failures_and_plots(tmp_path: Path) -> None:
    args = ["sim", SMOKE, "--format", "tiresias", "--nodes", "4x4", "--json", "--seed", "3"]
    args += ["--policy", "fifo", "--policy", "srtf", "--policy", "las"]
    args += ["--bookings", "0.25", "--mtbf-hours", "0.2", "--repair-hours", "0.05"]
    args += ["--plot", str(tmp_path / "plots")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert list(runs) == ["fifo", "srtf", "las"]
    for metrics in runs.values():
        assert metrics["jobs"] == 60 and metrics["bookings"] >= 1
        assert metrics["bookings_honoured"] == 1.0 and metrics["lost_runs"] >= 1
    assert runs["srtf"]["preempted"] > 0 and runs["fifo"]["preempted"] == 0
    for name in ("jct_cdf.svg", "queue.svg"):
        assert (tmp_path / "plots" / name).read_text().lstrip().startswith("<?xml")


@needs_trace(
    "philly_pollux_jobs.csv", "philly_vc_nodes_helios_qssf.csv", "philly_cluster_machine_list.csv"
)
def test_helios_partitions_and_a_cluster_file() -> None:
    csv = trace_file("philly_pollux_jobs.csv")
    args = ["sim", str(csv), "--format", "philly", "--limit", "300", "--json"]
    by_vc = CliRunner().invoke(
        app, [*args, "--vc-nodes", str(trace_file("philly_vc_nodes_helios_qssf.csv"))]
    )
    assert by_vc.exit_code == 0, by_vc.output
    out = json.loads(by_vc.output)
    assert out["gpus"] == 352 * 8
    assert out["runs"]["procplan"]["jobs"] + out["dropped"] == 300
    machines = CliRunner().invoke(
        app, [*args, "--cluster", str(trace_file("philly_cluster_machine_list.csv"))]
    )
    assert machines.exit_code == 0, machines.output
    assert json.loads(machines.output)["gpus"] == 2490
