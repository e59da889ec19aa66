"""Plots of simulator runs: valid SVG/PNG files, small even for long series."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from procplan.cli.sim_plots import (
    MAX_POINTS,
    PlotsUnavailableError,
    cdf_points,
    plot_jct_cdf,
    plot_queue,
    step_max,
)
from procplan.sim.engine import JobRecord, QueueSample

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUNS = {
    "fifo": [JobRecord(i, i * 10, i * 10 + i, i * 10 + i + 60 * i + 1, 1, "g") for i in range(50)],
    "sjf": [JobRecord(i, i * 10, i * 10, i * 10 + 30 * i + 1, 1, "g") for i in range(50)],
}


def _svg(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.startswith(("<?xml", "<svg")) and text.rstrip().endswith("</svg>")
    return text


def test_jct_cdf_svg_and_png(tmp_path: Path) -> None:
    svg = plot_jct_cdf(RUNS, tmp_path / "jct.svg", "JCT, smoke trace")
    assert svg == tmp_path / "jct.svg"
    text = _svg(svg)
    assert "fifo (50 jobs)" in text and "JCT, smoke trace" in text
    png = plot_jct_cdf(RUNS, tmp_path / "jct.PNG", "JCT")
    assert png.read_bytes().startswith(PNG_MAGIC)
    # The same runs give the same SVG bytes (no date, fixed ids).
    assert _svg(plot_jct_cdf(RUNS, tmp_path / "again.svg", "JCT, smoke trace")) == text


def test_queue_plot_of_a_long_replay_stays_small(tmp_path: Path) -> None:
    samples = [QueueSample(t * 37, (t * 7919) % 500, (t * 104729) % 2490) for t in range(120_000)]
    runs = {"fifo": samples, "empty": []}
    path = plot_queue(runs, tmp_path / "queue.svg", "queue, 120k events")
    text = _svg(path)
    assert path.stat().st_size < 1_000_000
    assert "jobs waiting" in text and "GPUs busy" in text
    assert plot_queue(runs, tmp_path / "q.png", "q").read_bytes().startswith(PNG_MAGIC)


def test_an_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        plot_jct_cdf(RUNS, tmp_path / "jct.pdf", "JCT")


def test_missing_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(PlotsUnavailableError, match=r"pip install 'procplan\[plot\]'"):
        plot_queue({}, tmp_path / "q.svg", "q")


def test_step_max_keeps_the_peaks() -> None:
    points = [(float(t), 1) for t in range(10_000)]
    points[4_321] = (4321.0, 99)  # a one-sample spike
    cut = step_max(points, max_points=100)
    assert len(cut) == 100
    assert max(v for _, v in cut) == 99 and min(v for _, v in cut) == 1
    assert cut[0][0] == 0.0 and cut[-1][0] == pytest.approx(9999.0)
    assert [t for t, _ in cut] == sorted(t for t, _ in cut)
    # A value held from before a window counts in it: no sample falls in most windows here.
    sparse = [(0.0, 5), (899.0, 0)] + [(899 + i / 10, 0) for i in range(1, 11)]
    expected = [(i * 100.0, 5) for i in range(9)] + [(900.0, 0)]
    assert step_max(sparse, max_points=10) == expected
    short = [(0.0, 1), (1.0, 2)]
    assert step_max(short) == short


def test_cdf_points_thin_to_evenly_spaced_ranks() -> None:
    assert cdf_points([]) == []
    assert cdf_points([3.0, 1.0, 2.0]) == [(1.0, 1 / 3), (2.0, 2 / 3), (3.0, 1.0)]
    many = cdf_points([float(v) for v in range(100_000)])
    assert len(many) == MAX_POINTS
    assert many[0] == (0.0, 1e-5) and many[-1] == (99_999.0, 1.0)
