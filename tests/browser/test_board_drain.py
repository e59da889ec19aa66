"""The board shows a drained node with its reason (ADR 0020), as text: the reason is an
admin's input, and an HTML injection attempt in it stays inert."""

from __future__ import annotations

from typing import Any

import pytest
from tests.browser.conftest import FOREIGN_NODE, NODE, XSS, Cluster

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None


def test_board_shows_the_drain_and_its_reason_and_resume_clears_it(
    page: Any, cluster: Cluster
) -> None:
    reason = f"disk swap {XSS}"
    drained = cluster.api("POST", f"/api/v1/nodes/{FOREIGN_NODE}/drain", json={"reason": reason})
    assert drained.status_code == 200, drained.text
    try:
        page.goto(cluster.url + "/board.html")
        card = page.locator(f'section.node-card[data-node="{FOREIGN_NODE}"]')
        expect(card.locator(".sched")).to_be_visible()
        expect(card.locator(".sched")).to_have_text(f"draining: {reason}")  # bob's booking
        expect(card).to_have_attribute("data-sched", "draining")
        expect(card.locator(".sched img")).to_have_count(0)
        other = page.locator(f'section.node-card[data-node="{NODE}"]')
        expect(other.locator(".sched")).to_be_hidden()
    finally:
        resumed = cluster.api("POST", f"/api/v1/nodes/{FOREIGN_NODE}/resume", json={})
        assert resumed.status_code == 200, resumed.text
    expect(card.locator(".sched")).to_be_hidden(timeout=15_000)  # the next 5 s poll
