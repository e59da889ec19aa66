"""The queue in Chromium: a pending job shows the scheduler's reason and what is in its way;
the signed-in user cancels their own job (after confirming) and it leaves the table; another
(non-admin) user gets no Cancel button on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.conftest import (
    NODE,
    USER,
    Cluster,
    Dialogs,
    queue_behind_a_full_node,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None


@pytest.fixture(scope="module")
def jobs(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A 1-GPU job pinned to ``gpu-node`` waits behind a 4-GPU ``sleep 60``."""
    yield queue_behind_a_full_node(cluster, tmp_path_factory.mktemp("jobs"))


def row(page: Any, table: str, job_id: str) -> Any:
    return page.locator(f'#{table} tbody tr[data-job="{job_id}"]')


def test_queue_shows_a_pending_job_with_its_reason(
    page: Any, cluster: Cluster, jobs: dict[str, str], tmp_path: Path
) -> None:
    page.goto(cluster.url + "/queue.html")
    pending = row(page, "pending", jobs["pending"])
    expect(pending).to_be_visible()
    expect(pending.locator("td.reason")).to_contain_text("waiting for GPUs to free up")
    # and what is in its way: the job on the node's GPUs (issue #19)
    expect(pending.locator("td.reason .waits")).to_have_text(f"in the way: #{jobs['running']}")
    expect(pending.locator("td.user")).to_have_text(USER)
    expect(pending.locator("td.name")).to_have_text("needs-one-gpu")
    expect(pending.locator("td").first).to_have_text("1")
    running = row(page, "running", jobs["running"])
    expect(running.locator("td.where")).to_have_text(f"{NODE} · GPU 0, 1, 2, 3")
    expect(running.locator("td.elapsed")).not_to_have_text("—")
    expect(page.locator("#summary")).to_contain_text("1 pending · 1 running on 4 GPUs")
    # Our own jobs carry a Cancel button; nobody else's would.
    expect(pending.get_by_role("button", name=f"Cancel job {jobs['pending']}")).to_be_visible()
    screenshot(page, "queue.png")


def test_no_cancel_button_for_other_users(
    page: Any, cluster: Cluster, jobs: dict[str, str]
) -> None:
    cluster.add_user("somebody-else", password="not an admin")
    sign_in(page, cluster, "somebody-else", "not an admin")
    page.goto(cluster.url + "/queue.html")
    expect(page.locator("#session .session-user")).to_have_text("somebody-else")
    expect(page.locator("#summary")).to_contain_text("you are somebody-else")
    pending = row(page, "pending", jobs["pending"])
    expect(pending.locator("td.user")).to_have_text(USER)
    expect(pending.get_by_role("button")).to_have_count(0)
    expect(row(page, "running", jobs["running"]).get_by_role("button")).to_have_count(0)


def test_cancel_own_pending_job_after_confirming(
    page: Any, cluster: Cluster, jobs: dict[str, str], dialogs: Dialogs
) -> None:
    page.goto(cluster.url + "/queue.html")
    button = row(page, "pending", jobs["pending"]).get_by_role("button", name="Cancel")
    # Dismissing the confirmation keeps the job.
    button.click()
    page.wait_for_timeout(200)
    assert [kind for kind, _ in dialogs.seen] == ["confirm"]
    assert cluster.job(jobs["pending"])["state"] == "pending"
    dialogs.accept_confirm = True
    button.click()
    expect(row(page, "pending", jobs["pending"])).to_have_count(0)
    expect(page.locator("#pending-empty")).to_be_visible()
    assert cluster.job(jobs["pending"])["state"] == "cancelled"
    assert "Withdraw the pending job" in dialogs.seen[-1][1]
