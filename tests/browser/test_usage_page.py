"""The Usage page (issue #14, the web face of ``procplan report``) in Chromium against a real
server whose real agent reports fake GPUs: bookings of two users that began most of an hour
ago show as booked GPU-hours in the daily chart, in booked-versus-used and in the totals; the
CSV download carries the same totals; per node works too; the page never scrolls sideways on a
phone."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from tests.browser.conftest import NODE, USER, Cluster, checked_page, screenshot

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def booked(cluster: Cluster) -> None:
    """USER and carol each booked a GPU of ``NODE`` from 55 minutes ago."""
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=55)
    end = start + dt.timedelta(hours=3)
    cluster.add_user("carol")
    for gpu, user in ((2, USER), (3, "carol")):
        body = {"node_id": NODE, "gpu_ids": [f"{NODE}-gpu{gpu}"], "start": start.isoformat(),
                "end": end.isoformat(), "label": "usage", "user": user}  # fmt: skip
        made = cluster.api("POST", "/api/v1/bookings", json=body, headers={"X-ProcPlan-User": user})
        assert made.status_code == 201, made.text


def test_usage_shows_booked_hours_per_user(
    page: Any, cluster: Cluster, booked: None, tmp_path: Path
) -> None:
    page.goto(cluster.url + "/usage.html")
    expect(page.locator("#usage-summary")).to_contain_text("GPU-h booked")
    row = page.locator('#usage-table tbody tr[data-key="carol"]')
    expect(row).to_be_visible()
    booked_hours = float(row.locator("td").nth(1).inner_text())
    assert 0.9 <= booked_hours <= 1.0
    expect(page.locator(f'#usage-table tbody tr[data-key="{USER}"]')).to_be_visible()
    assert page.locator("#chart-booked svg rect").count() >= 2  # one segment per user, today
    expect(page.locator("#chart-booked .chart-legend")).to_contain_text("carol")
    assert page.locator("#chart-used svg rect.booked").count() >= 2
    screenshot(page, "usage.png")

    with page.expect_download() as got:
        page.click("#usage-csv")
    lines = Path(got.value.path()).read_text().splitlines()
    header = "user,booked_gpu_hours,used_gpu_hours,idle_gpu_hours,job_gpu_hours,"
    assert lines[0] == header + "unbooked_gpu_hours,jobs"
    carol = next(line for line in lines if line.startswith("carol,"))
    assert abs(float(carol.split(",")[1]) - booked_hours) < 0.02

    page.select_option("#usage-by", "node")
    expect(page.locator(f'#usage-table tbody tr[data-key="{NODE}"]')).to_be_visible()
    expect(page.locator("#usage-key")).to_have_text("Node")


def test_usage_fits_a_phone(cluster: Cluster, booked: None, browser: Any, dialogs: Any) -> None:
    for phone in checked_page(browser, dialogs, viewport=PHONE):
        phone.goto(cluster.url + "/usage.html")
        expect(phone.locator('#usage-table tbody tr[data-key="carol"]')).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], width
