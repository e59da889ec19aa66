"""Issue #17, item 8: the queue page's "Recent" section lists the jobs that ended (completed,
failed, cancelled), newest first, each with its state and why it ended (exit code, message)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.browser.conftest import Cluster, until

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None


def test_recent_jobs_with_how_they_ended(
    page: Any, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("recent")
    ok = cluster.submit(workdir, "true", gpu_count=1, name="went-fine")
    bad = cluster.submit(workdir, "sh", "-c", "exit 3", gpu_count=1, name="went-wrong")
    stopped = cluster.submit(workdir, "sleep", "60", gpu_count=1, name="stopped")
    until(lambda: all(cluster.job(j)["state"] not in ("pending", "running") for j in (ok, bad)))
    cluster.api("DELETE", f"/api/v1/jobs/{stopped}")
    ids = (ok, bad, stopped)
    until(lambda: all(cluster.job(j)["state"] not in ("pending", "running") for j in ids))

    page.goto(cluster.url + "/queue.html")
    recent = page.locator("#recent")
    expect(recent).to_be_visible()
    for job_id, state in ((ok, "completed"), (bad, "failed"), (stopped, "cancelled")):
        row = recent.locator(f'tbody tr[data-job="{job_id}"]')
        expect(row.locator(".job-state")).to_have_text(state)
        message = cluster.job(job_id)["message"]
        if message:
            expect(row.locator(".reason")).to_contain_text(message)
    expect(recent.locator(f'tbody tr[data-job="{bad}"] .reason')).to_contain_text("exit code 3")
    first = recent.locator("tbody tr").first
    expect(first).to_have_attribute("data-job", stopped)  # newest first (it ended last)
    expect(page.locator("#recent-count")).to_contain_text("(3)")
