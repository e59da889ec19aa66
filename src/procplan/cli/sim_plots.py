"""Plots of simulator runs (issue #15): JCT CDFs and queue length over time, one line per policy.

matplotlib is an optional extra (``pip install 'procplan[plot]'``), imported only inside the
functions, so ``procplan sim`` works without it until a plot is asked for. The figures are
drawn on a bare ``matplotlib.figure.Figure`` rendered by the Agg/SVG backends: no pyplot, no
display, no global figure state. The file format follows the path's suffix (``.svg`` or
``.png``).

These live in ``procplan.cli`` rather than ``procplan.sim``: they write files and pull in a
third-party plotting library, while the simulator package stays pure (pyproject's import
contract forbids matplotlib there). Long series are downsampled first (CDFs to evenly spaced
ranks, queue series step-wise keeping each window's maximum), so an SVG of a 100k-event
replay stays well under 1 MB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procplan.sim.engine import JobRecord, QueueSample

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_POINTS = 2_000
FORMATS = (".svg", ".png")


class PlotsUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def _figure(rows: int) -> tuple[Figure, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotsUnavailableError("plots need matplotlib: pip install 'procplan[plot]'") from exc
    figure = Figure(figsize=(8, 3.2 * rows + 0.8), layout="constrained")
    return figure, figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]


def _save(figure: Figure, path: Path) -> Path:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"plot file must end in {' or '.join(FORMATS)}, not {path.name!r}")
    from matplotlib import rc_context

    # A fixed hash salt and no date: the same runs give the same SVG bytes.
    with rc_context({"svg.hashsalt": "procplan-sim"}):
        metadata = {"Date": None} if suffix == ".svg" else {}
        figure.savefig(path, format=suffix[1:], metadata=metadata, dpi=120)
    return path


def cdf_points(values: Sequence[float], max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
    """``(value, fraction ≤ value)`` of the empirical CDF, at most ``max_points`` of them at
    evenly spaced ranks (the smallest and largest value always kept)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return []
    if n <= max_points:
        ranks = list(range(n))
    else:
        step = (n - 1) / (max_points - 1)
        ranks = sorted({round(i * step) for i in range(max_points)})
    return [(ordered[r], (r + 1) / n) for r in ranks]


def step_max(
    points: Sequence[tuple[float, int]], max_points: int = MAX_POINTS
) -> list[tuple[float, int]]:
    """A step series ``(t, value)`` (sorted by ``t``, each value holding until the next) cut
    to at most ``max_points`` windows of equal time: each window's point is at its start and
    carries the largest value the series took inside it (peaks survive, dips may not)."""
    if len(points) <= max_points:
        return list(points)
    first, last = points[0][0], points[-1][0]
    width = (last - first) / (max_points - 1)
    out: list[tuple[float, int]] = []
    current = points[0][1]  # the value holding at the start of the window
    i = 0
    for w in range(max_points):
        start = first + w * width
        end = first + (w + 1) * width if w < max_points - 1 else math.inf
        peak = current
        while i < len(points) and points[i][0] < end:
            current = points[i][1]
            peak = max(peak, current)
            i += 1
        out.append((start, peak))
    return out


def plot_jct_cdf(runs: Mapping[str, Sequence[JobRecord]], path: Path, title: str) -> Path:
    """The CDF of job completion time (end − submit) for each policy, on a log time axis."""
    figure, (axes,) = _figure(1)
    for name, records in runs.items():
        points = cdf_points([max(r.end_s - r.submit_s, 1) for r in records])
        if points:
            xs, ys = zip(*points, strict=True)
            axes.step(xs, ys, where="post", label=f"{name} ({len(records):,} jobs)")
    axes.set_xscale("log")
    axes.set_xlabel("job completion time (s, log scale)")
    axes.set_ylabel("fraction of jobs")
    axes.set_ylim(0, 1.0)
    axes.grid(True, which="major", alpha=0.3)
    axes.set_title(title)
    if runs:
        axes.legend(loc="lower right")
    return _save(figure, path)


def plot_queue(runs: Mapping[str, Sequence[QueueSample]], path: Path, title: str) -> Path:
    """Jobs waiting (top) and GPUs busy (bottom) over time, in hours since the first
    submission, for each policy. Each series is downsampled with ``step_max``."""
    figure, (pending_axes, busy_axes) = _figure(2)
    for name, samples in runs.items():
        for axes, column in ((pending_axes, 1), (busy_axes, 2)):
            points = step_max([(s[0] / 3600, s[column]) for s in samples])
            if points:
                xs, ys = zip(*points, strict=True)
                axes.step(xs, ys, where="post", label=name, linewidth=0.8)
    pending_axes.set_ylabel("jobs waiting")
    busy_axes.set_ylabel("GPUs busy")
    busy_axes.set_xlabel("hours since the first submission")
    for axes in (pending_axes, busy_axes):
        axes.grid(True, alpha=0.3)
        axes.set_ylim(bottom=0)
    pending_axes.set_title(title)
    if runs:
        pending_axes.legend(loc="upper right")
    return _save(figure, path)
