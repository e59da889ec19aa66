"""Issue #17, item 4: a running job is drawn up to its time limit, not only for the time it has
run: the part from now on is "projected" (dashed); a job without a time limit is drawn to the
end of the view and marked open-ended."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.conftest import NODE, Cluster, Dialogs, checked_page, until

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

WEEK_S = 7 * 24 * 3600


@pytest.fixture
def desk(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    yield from checked_page(browser, dialogs, viewport={"width": 1400, "height": 900})


@pytest.fixture(scope="module")
def jobs(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two running jobs: one with a 12 h time limit, one without any."""
    workdir = tmp_path_factory.mktemp("projection")
    limited = cluster.submit(workdir, "sleep", "120", gpu_count=1, time_limit_s=12 * 3600)
    unlimited = cluster.submit(workdir, "sleep", "120", gpu_count=1)
    until(lambda: all(cluster.job(j)["state"] == "running" for j in (limited, unlimited)))
    yield {"limited": cluster.job(limited), "unlimited": cluster.job(unlimited)}
    cluster.cancel_all()


def share_of_week(instant: dt.datetime) -> float:
    """Where ``instant`` lies in the current (Monday-based, UTC) week: 0–1, capped."""
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = day - dt.timedelta(days=day.weekday())
    return min(1.0, (instant - monday).total_seconds() / WEEK_S)


def test_running_jobs_are_drawn_to_their_limit(
    desk: Any, cluster: Cluster, jobs: dict[str, Any]
) -> None:
    desk.goto(cluster.url + "/")
    expect(desk.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    for kind, job in jobs.items():
        (gpu_id,) = job["allocated_gpus"]
        track = desk.locator(f'tr.gpu-row[data-gpu="{gpu_id}"] td.track')
        bar = track.locator(f'.job-bar[data-job="{job["id"]}"]')
        projected = bar.locator(".job-projected")
        expect(projected).to_have_count(1)
        assert projected.evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
        box, lane = bar.bounding_box(), track.bounding_box()
        start = dt.datetime.fromisoformat(job["started_at"])
        if kind == "limited":
            end = start + dt.timedelta(seconds=job["time_limit_s"])
            expected = share_of_week(end)
            expect(bar).not_to_have_class(re.compile(r"\bopen-ended\b"))
        else:
            expected = 1.0
            expect(bar).to_have_class(re.compile(r"\bopen-ended\b"))
        right = (box["x"] + box["width"] - lane["x"]) / lane["width"]
        assert abs(right - expected) < 0.01, (kind, right, expected)
