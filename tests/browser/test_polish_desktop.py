"""Issue #17, items 3 and 5 on a 1400×900 desktop: the booking form's fields stay inside the
dialog, GPU rows are not cut off ("Simulated H100 8…"), a short bar's label is shown whole
beside it (never "res…") with the full text in its tooltip, and the board names a demo node's
GPUs as simulated instead of showing the demo machine's host name ("vm") as if it were the
node's."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.conftest import NODE, Cluster, Dialogs, checked_page
from tests.browser.test_planner import at, book, gpu, open_planner, track

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None


@pytest.fixture
def desk(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    yield from checked_page(browser, dialogs, viewport={"width": 1400, "height": 900})


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        outer["x"] <= inner["x"] + 0.5
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
    )


def test_form_fields_stay_inside_the_dialog(desk: Any, cluster: Cluster) -> None:
    open_planner(desk, cluster, weeks_ahead=1)
    track(desk, 1).focus()
    desk.keyboard.press("Enter")
    form = desk.locator("#booking-dialog")
    expect(form).to_be_visible()
    box = form.bounding_box()
    for field in ("start", "end", "priority", "label"):
        field_box = form.locator(f"[name={field}]").bounding_box()
        assert inside(field_box, box), f"{field} sticks out of the dialog: {field_box} {box}"
    form.get_by_role("button", name="Cancel").click()


def test_gpu_rows_and_short_bars_are_not_cut_off(desk: Any, cluster: Cluster) -> None:
    # 6 h: about 44 px at 1400 px, which showed "resea…" inside; the label goes beside it.
    book(cluster, [gpu(0)], at(1, 2, 10), at(1, 2, 16), label="research run")
    open_planner(desk, cluster, weeks_ahead=1)
    cut = desk.evaluate(
        """() => [...document.querySelectorAll('#grid :is(.gpu-name, .bar-text, .side-label)')]
            .filter((e) => e.scrollWidth > e.clientWidth + 1)
            .map((e) => e.textContent)"""
    )
    assert cut == [], f"cut off: {cut}"
    row = desk.locator(f'tr.gpu-row[data-gpu="{gpu(0)}"] th.gpu-name')
    expect(row).to_have_attribute("title", f"{gpu(0)}: Simulated H100 80GB")
    expect(desk.locator(f'tbody[data-node="{NODE}"] tr.node-row')).to_contain_text(
        "4 × Simulated H100 80GB"
    )
    bar = track(desk, 0).locator("button.bar")
    expect(bar).to_have_attribute("title", re.compile("^research run — "))
    expect(bar.locator(".bar-text")).to_have_count(0)  # too short for "research run"
    expect(track(desk, 0).locator(".side-label")).to_have_text("research run")


def test_board_does_not_show_the_demo_host_as_the_nodes_name(desk: Any, cluster: Cluster) -> None:
    desk.goto(cluster.url + "/board.html")
    meta = desk.locator(f'section.node-card[data-node="{NODE}"] .node-meta')
    expect(meta).to_contain_text("simulated GPUs")
    parts = meta.text_content().split(" · ")
    assert socket.gethostname() not in parts, parts
    assert any(part.startswith("agent ") for part in parts), parts  # its version, now shown
    host = re.escape(socket.gethostname())
    expect(meta).to_have_attribute("title", re.compile(f"^agent on host {host}"))
