"""The live cluster board in Chromium: FakeGpuReader readings of a real agent, a foreign
process flagged, a booked but idle GPU flagged, and an HTML injection attempt in a process
command rendered as text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.conftest import FOREIGN_NODE, NODE, USER, XSS, Cluster, Dialogs, screenshot

pytestmark = pytest.mark.browser
IDLE_BOOKING_MINUTES = 1  # this module's server flags a booked GPU idle for a minute

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None


@pytest.fixture(scope="module")
def short_idle_threshold() -> Iterator[None]:
    """``PROCPLAN_IDLE_BOOKING_MINUTES`` for the server this module starts (the default, 30
    minutes, is too long to wait for). Only ``gpu-node``'s agent keeps reporting and nothing
    else books its GPUs, so only the idle-booking test sees the flag."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROCPLAN_IDLE_BOOKING_MINUTES", str(IDLE_BOOKING_MINUTES))
        yield


@pytest.fixture(scope="module")
def cluster(short_idle_threshold: None, cluster: Cluster) -> Cluster:
    """The suite's cluster, its server started with the short idle threshold."""
    return cluster


def card(page: Any, node_id: str) -> Any:
    return page.locator(f'section.node-card[data-node="{node_id}"]')


def open_board(page: Any, cluster: Cluster) -> None:
    page.goto(cluster.url + "/board.html")
    expect(card(page, NODE)).to_be_visible()
    expect(card(page, FOREIGN_NODE).locator("tbody tr")).to_have_count(2)


def test_board_shows_the_agent_node_and_its_fake_readings(page: Any, cluster: Cluster) -> None:
    open_board(page, cluster)
    node = card(page, NODE)
    expect(node).to_have_attribute("data-state", "online")
    expect(node.locator(".state")).to_have_text("online")
    expect(node.locator("h3")).to_have_text(NODE)
    rows = node.locator("tbody tr")
    expect(rows).to_have_count(4)
    expect(node.locator("td.gpu-index")).to_have_text(["0", "1", "2", "3"])
    expect(node.locator("td.temp")).to_have_text(["30 °C"] * 4)
    expect(node.locator("td.power")).to_have_text(["60 W"] * 4)
    expect(node.locator("td.util .meter-text")).to_have_text(["0 %"] * 4)
    # Each GPU has a sparkline (empty until a minute of history closes) and no flags.
    expect(node.locator("td.spark svg.sparkline")).to_have_count(4)
    expect(node.locator(".badge")).to_have_count(0)
    expect(page.locator("#summary")).to_contain_text("2 nodes · 2 online")
    expect(page.locator("#summary")).to_contain_text("6 GPUs")


def test_board_flags_the_foreign_unbooked_process(page: Any, cluster: Cluster) -> None:
    open_board(page, cluster)
    gpu0 = card(page, FOREIGN_NODE).locator("tbody tr").nth(0)
    expect(gpu0.locator(".badge-unbooked_use")).to_have_text("unbooked use")
    expect(gpu0.locator(".badge-foreign")).to_have_text("foreign")
    expect(gpu0.locator(".proc-user")).to_have_text("mallory")
    expect(gpu0.locator(".proc .tag")).to_have_text("unbooked")
    expect(gpu0.locator("td.temp")).to_have_text("71 °C")
    expect(gpu0.locator("td.util .meter-text")).to_have_text("87 %")
    expect(gpu0.locator("td.holder")).to_have_text("free")
    # GPU 1: booked by bob, no process, not flagged (yet: "idle" needs 30 minutes).
    gpu1 = card(page, FOREIGN_NODE).locator("tbody tr").nth(1)
    expect(gpu1.locator("td.holder .tag-booking")).to_have_text("booking")
    expect(gpu1.locator("td.holder strong")).to_have_text("bob")
    expect(gpu1.locator("td.holder .holder-line").first).to_have_text("bob's eval run")
    expect(gpu1.locator(".badge")).to_have_count(0)
    expect(page.locator("#summary")).to_contain_text("1 foreign · 1 flagged")


def test_a_command_with_markup_renders_as_text(
    page: Any, cluster: Cluster, dialogs: Dialogs
) -> None:
    open_board(page, cluster)
    command = card(page, FOREIGN_NODE).locator(".proc-cmd")
    expect(command).to_have_text(XSS)
    expect(command).to_be_visible()
    assert page.locator("#board img").count() == 0
    page.wait_for_timeout(300)  # an injected onerror would have fired by now
    assert dialogs.seen == []


def test_board_refreshes_in_place(page: Any, cluster: Cluster) -> None:
    """A 5 s refresh keeps unchanged rows (same DOM nodes: no flicker, focus kept)."""
    page.clock.install()
    open_board(page, cluster)
    page.evaluate("window.__row = document.querySelector('section.node-card tbody tr')")
    for _ in range(2):
        before = page.locator("#status").text_content()
        page.clock.run_for(5_500)
        expect(page.locator("#status")).not_to_have_text(before or "")
    assert page.evaluate("window.__row.isConnected") is True


def test_board_screenshot(page: Any, cluster: Cluster) -> None:
    open_board(page, cluster)
    expect(card(page, FOREIGN_NODE).locator(".badge-unbooked_use")).to_be_visible()
    screenshot(page, "board.png")


def test_board_flags_a_booked_but_idle_gpu(page: Any, cluster: Cluster) -> None:
    """``gpu-node``'s fake GPUs idle from the start; booking GPU 3 gets it flagged "booked but
    idle" once it has idled for ``idle_booking_minutes`` (at most a minute's wait here), and
    releasing the booking clears the flag. Last in the module: the others expect no flag."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    end = now + dt.timedelta(hours=1)
    booking = {"node_id": NODE, "gpu_ids": [f"{NODE}-gpu3"], "label": "idle-check",
               "start": now.isoformat(), "end": end.isoformat()}  # fmt: skip
    reply = cluster.api("POST", "/api/v1/bookings", json=booking)
    assert reply.status_code == 201, reply.text
    booking_id = reply.json()["booking"]["id"]
    try:
        open_board(page, cluster)
        gpu3 = card(page, NODE).locator("tbody tr").nth(3)
        expect(gpu3.locator("td.holder .tag-booking")).to_have_text("booking")
        expect(gpu3.locator("td.holder strong")).to_have_text(USER)
        wait_ms = (IDLE_BOOKING_MINUTES * 60 + 30) * 1000  # idle time, heartbeat, 5 s refresh
        expect(gpu3.locator(".badge-idle_booking")).to_have_text("booked but idle", timeout=wait_ms)
        expect(gpu3).to_have_class("flagged")
        expect(card(page, NODE).locator(".badge")).to_have_count(1)
        expect(page.locator("#summary")).to_contain_text("2 flagged")
    finally:
        reply = cluster.api("POST", f"/api/v1/bookings/{booking_id}/release")
        assert reply.status_code == 200, reply.text
    expect(gpu3.locator(".badge")).to_have_count(0, timeout=20_000)
    expect(page.locator("#summary")).to_contain_text("1 flagged")
