"""Issue #17, item 6: every page loads with no console error and no failed request, and the
site has a real icon: ``favicon.svg`` declared by each page (a relative URL, so it works under
a path prefix) and ``/favicon.ico`` for the browsers and tools that ask for it regardless."""

from __future__ import annotations

from typing import Any

import pytest
from tests.browser.conftest import Cluster

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

PAGES = ["", "board.html", "queue.html", "usage.html", "audit.html", "notify.html", "login.html"]


def failed(request: Any, problems: list[str]) -> None:
    """A request that failed, except those the browser aborted itself (headless Chromium drops
    icon loads, and a navigation cancels what the previous page still had in flight)."""
    if request.failure != "net::ERR_ABORTED":
        problems.append(f"failed: {request.url} {request.failure}")


def test_every_page_loads_without_console_errors(page: Any, cluster: Cluster) -> None:
    problems: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
    page.on("requestfailed", lambda req: failed(req, problems))
    page.on(
        "response",
        lambda reply: reply.status >= 400 and problems.append(f"{reply.status}: {reply.url}"),
    )
    for name in PAGES:
        page.goto(f"{cluster.url}/{name}")
        page.wait_for_load_state("networkidle")
        icon = page.locator('link[rel="icon"]')
        expect(icon).to_have_attribute("href", "favicon.svg")
        assert page.evaluate("fetch('favicon.svg').then((r) => r.status)") == 200, name
    assert problems == [], problems


def test_favicon_ico_is_an_icon(page: Any, cluster: Cluster) -> None:
    reply = page.request.get(cluster.url + "/favicon.ico")
    assert reply.status == 200
    assert reply.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert reply.body()[:4] == b"\x00\x00\x01\x00"  # an ICO header
    svg = page.request.get(cluster.url + "/favicon.svg")
    assert svg.status == 200 and svg.headers["content-type"].startswith("image/svg+xml")
