"""Issue #17, item 9 on a phone (390×844): the planner's controls are folded behind "More" so
the grid starts in the top quarter of the screen (they took 600 of 844 px), and unfold with one
tap; the queue's new "Recent" table scrolls inside its frame instead of being cut off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.conftest import NODE, Cluster, Dialogs, checked_page, screenshot, until
from tests.browser.test_planner import at, book, gpu

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    yield from checked_page(
        browser, dialogs, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )


def test_planner_controls_fold_away(phone: Any, cluster: Cluster) -> None:
    phone.goto(cluster.url + "/")
    expect(phone.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    top = phone.locator("#grid-wrap").bounding_box()["y"]
    assert top < PHONE["height"] / 4, f"the grid starts {top} px down"
    for kept in ("#week-prev", "#week-today", "#week-next", "#week-label"):
        expect(phone.locator(kept)).to_be_visible()
    more = phone.locator("#controls-toggle")
    expect(more).to_have_attribute("aria-expanded", "false")
    for folded in ("#view-year", "#date-pick", "#node-filter", "#session"):
        expect(phone.locator(folded)).to_be_hidden()
    more.tap()
    expect(more).to_have_attribute("aria-expanded", "true")
    for shown in ("#view-year", "#date-pick", "#node-filter", "#session"):
        expect(phone.locator(shown)).to_be_visible()
    more.tap()
    expect(phone.locator("#node-filter")).to_be_hidden()


def test_queue_tables_scroll_instead_of_being_cut_off(
    phone: Any, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    job = cluster.submit(
        tmp_path_factory.mktemp("phone-recent"), "sh", "-c", "exit 2", gpu_count=1,
        name="a-rather-long-job-name-for-a-small-screen",
    )  # fmt: skip
    until(lambda: cluster.job(job)["state"] not in ("pending", "running"))
    phone.goto(cluster.url + "/queue.html")
    table = phone.locator("#recent")
    expect(table.locator(f'tbody tr[data-job="{job}"]')).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    frame = table.locator("xpath=..")
    wrap = frame.evaluate("(e) => [e.scrollWidth, e.clientWidth, getComputedStyle(e).overflowX]")
    assert wrap[2] == "auto" and wrap[1] <= PHONE["width"], wrap
    expect(table.locator(f'tbody tr[data-job="{job}"] .reason')).to_contain_text("exit code 2")


def test_phone_screenshot(phone: Any, cluster: Cluster) -> None:
    """Next week on a phone, controls folded (``docs/img/planner-phone.png``, written only
    with ``PROCPLAN_SCREENSHOTS=1``)."""
    plan = [
        ([0, 1], (0, 9), (0, 18), "alice", "high", "llama-70b finetune"),
        ([2], (0, 6), (1, 20), "bob", "medium", "ablation sweep"),
        ([3], (1, 2), (1, 9), "carol", "low", "eval"),
    ]
    for gpus, (d0, h0), (d1, h1), user, priority, label in plan:
        book(cluster, [gpu(i) for i in gpus], at(1, d0, h0), at(1, d1, h1), user=user,
             priority=priority, label=label)  # fmt: skip
    monday = at(1, 0, 0)
    phone.goto(f"{cluster.url}/#view=week&date={monday:%Y-%m-%d}")
    expect(phone.locator('#grid button.bar[title^="llama-70b finetune"]')).to_have_count(2)
    screenshot(phone, "planner-phone.png", full_page=False)
