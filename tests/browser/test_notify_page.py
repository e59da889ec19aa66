"""The notifications page (issue #14, the web face of ``procplan notify``) in Chromium against
a real server: the signed-in user (this host's, by its connection) adds a webhook channel,
sends it a test message that a real receiver gets, sees the last delivery, and removes it
after confirming; a label that is an HTML injection attempt stays text; a bad URL is refused
with the server's reason, in the page."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.browser.conftest import Cluster, Dialogs

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

PWN = '<img src=x onerror="window.__pwned=1">'


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"json://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()


def test_add_test_and_remove_a_channel(
    page: Any, cluster: Cluster, dialogs: Dialogs, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, got = receiver
    page.goto(cluster.url + "/notify.html")
    expect(page.locator("#session .session-notify")).to_have_attribute("aria-current", "page")
    page.fill("#notify-url", "nonsense://x")
    page.click("#notify-add button[type=submit]")
    expect(page.locator("#notify-problem")).to_contain_text("apprise")

    page.fill("#notify-url", url)
    page.fill("#notify-events", "job.failed,booking")
    page.fill("#notify-label", PWN)
    page.click("#notify-add button[type=submit]")
    row = page.locator("#notify tbody tr").first
    expect(row).to_contain_text("json://127.0.0.1/…")
    expect(row).to_contain_text("job.failed, booking")
    expect(row.locator("td").nth(4)).to_have_text(PWN)  # text, not markup
    assert page.evaluate("window.__pwned") is None

    row.get_by_role("button", name="Test").click()
    expect(row.locator("td.last")).to_have_text(re.compile(r"^sent "))
    assert [m["title"] for m in got] == ["ProcPlan test"]

    dialogs.accept_confirm = True
    row.get_by_role("button", name="Remove").click()
    expect(page.locator("#notify-empty")).to_be_visible()
    assert cluster.api("GET", "/api/v1/notify/channels").json()["channels"] == []
