"""The planner's live layer in Chromium: a running batch job is drawn on its GPU's row as a
hatched "job bar" (distinct from bookings, read-only details on click), and the row header of a
GPU with a foreign process (``lab-box`` GPU 0, mallory's) carries a "⚠ in use" badge naming
the process user, while ``gpu-node``'s GPUs do not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.conftest import FOREIGN_NODE, NODE, USER, Cluster, until

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None


@pytest.fixture(scope="module")
def running_job(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A 1-GPU ``sleep 60`` on ``gpu-node`` with a one-hour limit, running; cancelled after."""
    workdir = tmp_path_factory.mktemp("live-jobs")
    job_id = cluster.submit(workdir, "sleep", "60", gpu_count=1, time_limit_s=3600, name="live")
    until(lambda: cluster.job(job_id)["state"] == "running")
    yield cluster.job(job_id)
    cluster.api("DELETE", f"/api/v1/jobs/{job_id}")
    until(lambda: cluster.job(job_id)["state"] not in ("pending", "running"))


def open_planner(page: Any, cluster: Cluster) -> None:
    page.goto(cluster.url + "/")
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    expect(page.locator(f'tbody[data-node="{FOREIGN_NODE}"] tr.gpu-row')).to_have_count(2)


def test_running_job_is_drawn_on_its_gpu_row(
    page: Any, cluster: Cluster, running_job: dict[str, Any]
) -> None:
    job_id = running_job["id"]
    (gpu_id,) = running_job["allocated_gpus"]
    open_planner(page, cluster)
    bars = page.locator(f'#grid .job-bar[data-job="{job_id}"]')
    own_row = page.locator(f'tr.gpu-row[data-gpu="{gpu_id}"] .job-bar[data-job="{job_id}"]')
    expect(own_row.first).to_be_attached()
    # Only on its GPU's row, one bar; labelled inside or (a short job) beside the bar.
    assert bars.count() == own_row.count() == 1
    job_bar = own_row.first
    track = page.locator(f'tr.gpu-row[data-gpu="{gpu_id}"] td.track')
    expect(track).to_contain_text(f"job {job_id} · {USER}")
    expect(job_bar).to_have_attribute("aria-label", re.compile(f"^Running job {job_id} "))
    expect(job_bar).to_have_attribute("data-user", USER)
    # A distinct style: not a booking bar, no priority colour, hatched; the part still to run
    # (up to its time limit) dashed.
    assert "bar" not in (job_bar.get_attribute("class") or "").split()
    assert job_bar.get_attribute("data-booking") is None
    style = job_bar.evaluate(
        "e => { const s = getComputedStyle(e); return [s.borderTopStyle, s.backgroundImage]; }"
    )
    assert style[1].startswith("repeating-linear-gradient"), style
    projected = job_bar.locator(".job-projected")
    assert projected.evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
    expect(page.locator(".legend")).to_contain_text("Running job")

    # Click: read-only details of the job.
    job_bar.click()
    panel = page.locator("#details")
    expect(panel).to_be_visible()
    expect(panel.locator("#details-list")).to_contain_text(f"{job_id} (running)")
    expect(panel.locator("#details-list")).to_contain_text(gpu_id)
    for button in ("#details-extend", "#details-release", "#details-cancel"):
        expect(panel.locator(button)).to_be_hidden()


def test_foreign_gpu_is_marked_in_its_row_header(
    page: Any, cluster: Cluster, running_job: dict[str, Any]
) -> None:
    open_planner(page, cluster)
    header = page.locator(f'tr.gpu-row[data-gpu="{FOREIGN_NODE}-gpu0"] th.gpu-name')
    expect(header).to_have_class("gpu-name gpu-foreign")
    badge = header.locator(".foreign-badge")
    expect(badge).to_contain_text("⚠ in use")
    assert "mallory" in (badge.get_attribute("title") or "")
    expect(page.locator(f'tbody[data-node="{FOREIGN_NODE}"] .gpu-foreign')).to_have_count(1)
    expect(page.locator(f'tbody[data-node="{NODE}"] .gpu-foreign')).to_have_count(0)
    expect(page.locator(f'tbody[data-node="{NODE}"] .foreign-badge')).to_have_count(0)
