"""``procplan sim`` end to end on the smoke trace (no server involved)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from procplan.cli.main import app

SMOKE = "/work/shared/traces/tiresias_60_job.csv"

# The shared trace files live outside the repository: skip where they are absent.
needs_traces = pytest.mark.skipif(not Path(SMOKE).exists(), reason="trace files not here")


@needs_traces
def test_json_output() -> None:
    args = ["sim", SMOKE, "--format", "tiresias", "--nodes", "4x4", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["gpus"], out["limits"]) == (16, "oracle")
    metrics = out["metrics"]
    assert (metrics["jobs"], metrics["skipped"], metrics["unplaced"]) == (60, 0, 0)
    assert metrics["events"] == 120 and metrics["events_per_s"] > 0
    assert 0 < metrics["utilization"] <= 1


@needs_traces
def test_table_output_with_limit() -> None:
    args = ["sim", SMOKE, "--format", "tiresias", "--nodes", "1x8", "--limit", "5"]
    args += ["--limits", "none"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 jobs on 1x8 (none limits)" in result.output
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
