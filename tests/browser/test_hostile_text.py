"""Output hygiene in the web UI: a booking label and a batch job name that carry an HTML
injection (``<img src=x onerror=...>``) are shown as literal text by the planner and the queue
page; no element is created from them and their script never runs.

The pages build the DOM with ``textContent`` (never ``innerHTML``); this pins it with a probe
that would set ``window.__pwned`` if any page ever parsed server text as HTML.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.conftest import NODE, Cluster, Dialogs, until

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

PWN = '<img src=x onerror="window.__pwned=1">'


def next_monday() -> dt.datetime:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=1)


@pytest.fixture(scope="module")
def hostile(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A booking next Tuesday labelled ``PWN`` and a running batch job named ``PWN``."""
    start = next_monday() + dt.timedelta(days=1, hours=8)
    body = {"node_id": NODE, "gpu_ids": [f"{NODE}-gpu3"], "start": start.isoformat(),
            "end": (start + dt.timedelta(hours=10)).isoformat(), "label": PWN}  # fmt: skip
    reply = cluster.api("POST", "/api/v1/bookings", json=body)
    assert reply.status_code == 201, reply.text
    workdir = tmp_path_factory.mktemp("hostile")
    job_id = cluster.submit(workdir, "sleep", "60", gpu_count=1, name=PWN)
    until(lambda: cluster.job(job_id)["state"] == "running")
    yield {"booking": reply.json()["booking"]["id"], "job": job_id}


def assert_not_injected(page: Any) -> None:
    """No ``<img>`` anywhere, and the ``onerror`` payload never ran."""
    page.wait_for_timeout(300)  # a broken image's onerror would have fired by now
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_planner_shows_the_label_as_text(
    page: Any, cluster: Cluster, hostile: dict[str, Any], dialogs: Dialogs
) -> None:
    page.goto(cluster.url + "/")
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    label = page.locator("#week-label").text_content()
    page.click("#week-next")
    expect(page.locator("#week-label")).not_to_have_text(label or "")
    bar = page.locator(f'#grid button.bar[data-booking="{hostile["booking"]}"]').first
    expect(bar).to_have_text(PWN)
    bar.click()
    expect(page.locator("#details-title")).to_have_text(PWN)
    assert_not_injected(page)
    assert dialogs.seen == []


def test_queue_shows_the_job_name_as_text(
    page: Any, cluster: Cluster, hostile: dict[str, Any]
) -> None:
    page.goto(cluster.url + "/queue.html")
    row = page.locator(f'#running tbody tr[data-job="{hostile["job"]}"]')
    expect(row.locator("td.name")).to_have_text(PWN)
    assert_not_injected(page)


def test_the_probe_would_catch_an_injection(page: Any, tmp_path: Path) -> None:
    """Control: the same text parsed as HTML does run, so the checks above can fail."""
    page.set_content(f"<body>{PWN}</body>")
    page.wait_for_function("window.__pwned === 1")
    assert page.locator("img").count() == 1
