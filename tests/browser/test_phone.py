"""The cluster board, the queue and the sign-in page on a phone (390×844, touch): phone.css keeps
the page from scrolling sideways (wide tables scroll in their own wrapper), the header wraps, the
readings that matter stay on the first screen, touch targets are large enough, cancelling one's
own pending job works by tapping, and signing in works by tapping."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.conftest import (
    FOREIGN_NODE,
    NODE,
    Cluster,
    Dialogs,
    checked_page,
    queue_behind_a_full_node,
    until,
)

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

PHONE = {"width": 390, "height": 844}
MIN_TARGET_PX = 32  # buttons and links
MIN_FONT_PX = 11


@pytest.fixture
def phone(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    """Like ``page``, but an iPhone-sized touch screen."""
    yield from checked_page(
        browser, dialogs, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )


def assert_fits_the_phone(page: Any) -> None:
    """No sideways scrolling of the page, every header item inside the screen, every button
    and link tall enough to tap, no text below ``MIN_FONT_PX``."""
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert inner == PHONE["width"]
    assert width <= inner, f"the page scrolls sideways: {width} px wide in a {inner} px screen"
    outside = page.evaluate(
        """() => [...document.querySelectorAll('.topbar *')]
            .filter((e) => e.getClientRects().length)
            .filter((e) => {
              const r = e.getBoundingClientRect();
              return r.left < 0 || r.right > innerWidth;
            })
            .map((e) => e.outerHTML.slice(0, 60))"""
    )
    assert outside == [], f"header items outside the screen: {outside}"
    small = page.evaluate(
        f"""() => [...document.querySelectorAll('button, a[href], input')]
            .filter((e) => e.getClientRects().length)
            .filter((e) => e.getBoundingClientRect().height < {MIN_TARGET_PX})
            .map((e) => e.outerHTML.slice(0, 60))"""
    )
    assert small == [], f"touch targets under {MIN_TARGET_PX} px: {small}"
    tiny = page.evaluate(
        f"""() => [...document.querySelectorAll('body *')]
            .filter((e) => e.getClientRects().length && [...e.childNodes].some(
              (n) => n.nodeType === 3 && n.textContent.trim()))
            .filter((e) => parseFloat(getComputedStyle(e).fontSize) < {MIN_FONT_PX})
            .map((e) => e.outerHTML.slice(0, 60))"""
    )
    assert tiny == [], f"text under {MIN_FONT_PX} px: {tiny}"


def on_screen(page: Any, locator: Any) -> None:
    """The element is visible without scrolling sideways."""
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


def card(page: Any, node_id: str) -> Any:
    return page.locator(f'section.node-card[data-node="{node_id}"]')


def test_board_on_a_phone(phone: Any, cluster: Cluster) -> None:
    phone.goto(cluster.url + "/board.html")
    node = card(phone, NODE)
    expect(node.locator("tbody tr")).to_have_count(4)
    expect(card(phone, FOREIGN_NODE).locator("tbody tr")).to_have_count(2)
    assert_fits_the_phone(phone)
    on_screen(phone, node.locator("h3"))
    expect(node.locator("h3")).to_have_text(NODE)
    on_screen(phone, node.locator(".state"))
    # GPU index, utilization and memory are on the first screen; the rest scrolls in the table.
    first = node.locator("tbody tr").first
    on_screen(phone, first.locator("td.gpu-index"))
    on_screen(phone, first.locator("td.util .meter-text"))
    expect(first.locator("td.util .meter-text")).to_have_text("0 %")
    on_screen(phone, first.locator("td.mem .meter-text"))
    wrap = node.locator(".table-wrap")
    assert wrap.evaluate("(e) => e.scrollWidth > e.clientWidth"), "the GPU table fits: no test"
    # Scrolling the table brings the temperature in; the GPU index stays pinned at the left.
    temp = first.locator("td.temp")
    temp.scroll_into_view_if_needed()
    on_screen(phone, temp)
    expect(temp).to_have_text("30 °C")
    assert wrap.evaluate("(e) => e.scrollLeft") > 0
    on_screen(phone, first.locator("td.gpu-index"))
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_planner_on_a_phone_tap_to_book(phone: Any, cluster: Cluster) -> None:
    """The week grid scrolls inside its frame (not the page); tapping GPU 2's Tuesday opens the
    form for that whole day, sized to the screen; the booking appears and a tap on its bar
    opens the details as a sheet inside the screen."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=1)
    phone.goto(f"{cluster.url}/#view=week&date={monday:%Y-%m-%d}")
    track = phone.locator(f'tr.gpu-row[data-gpu="{NODE}-gpu2"] td.track')
    expect(phone.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    wrap = phone.locator("#grid-wrap")
    assert wrap.evaluate("(e) => e.scrollWidth > e.clientWidth"), "the week fits: no test"
    phone.locator("#controls-toggle").tap()  # the rarer controls are folded away
    for control in ("#week-prev", "#week-today", "#week-next", "#date-pick", "#view-year"):
        on_screen(phone, phone.locator(control))
        assert phone.locator(control).bounding_box()["height"] >= MIN_TARGET_PX

    box = track.bounding_box()
    track.tap(position={"x": box["width"] * 1.5 / 7, "y": box["height"] / 2})
    form = phone.locator("#booking-dialog")
    expect(form).to_be_visible()
    tuesday, wednesday = monday + dt.timedelta(days=1), monday + dt.timedelta(days=2)
    expect(form.locator("input[name=start]")).to_have_value(f"{tuesday:%Y-%m-%d}T00:00")
    expect(form.locator("input[name=end]")).to_have_value(f"{wednesday:%Y-%m-%d}T00:00")
    expect(form.locator("input[name=gpu]:checked")).to_have_attribute("value", f"{NODE}-gpu2")
    on_screen(phone, form)
    form.locator("input[name=label]").fill("tapped")
    form.get_by_role("button", name="Book").tap()
    expect(form).to_be_hidden()
    bar = track.locator("button.bar")
    expect(bar).to_have_text("tapped")
    bar.tap()
    on_screen(phone, phone.locator("#details"))
    expect(phone.locator("#details-title")).to_have_text("tapped")


@pytest.fixture(scope="module")
def pending_job(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """As in test_queue.py: a 1-GPU job waits behind a full ``gpu-node``."""
    yield queue_behind_a_full_node(cluster, tmp_path_factory.mktemp("jobs"))


def test_queue_on_a_phone_cancel_by_tapping(
    phone: Any, cluster: Cluster, pending_job: dict[str, str], dialogs: Dialogs
) -> None:
    phone.goto(cluster.url + "/queue.html")
    pending = phone.locator(f'#pending tbody tr[data-job="{pending_job["pending"]}"]')
    running = phone.locator(f'#running tbody tr[data-job="{pending_job["running"]}"]')
    expect(pending).to_be_visible()
    expect(running).to_be_visible()
    assert_fits_the_phone(phone)
    on_screen(phone, phone.locator("#session"))
    on_screen(phone, phone.locator("#summary"))
    # The Cancel button is pinned to the right edge of the scrolling table: on screen as is.
    button = pending.get_by_role("button", name=f"Cancel job {pending_job['pending']}")
    on_screen(phone, button)
    button.tap()
    until(lambda: [kind for kind, _ in dialogs.seen] == ["confirm"])
    assert cluster.job(pending_job["pending"])["state"] == "pending"
    dialogs.accept_confirm = True
    button.tap()
    expect(pending).to_have_count(0)
    expect(phone.locator("#pending-empty")).to_be_visible()
    assert cluster.job(pending_job["pending"])["state"] == "cancelled"
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_sign_in_on_a_phone(phone: Any, cluster: Cluster) -> None:
    """The form takes the screen's width with 16 px fields (no zoom on focus); a wrong
    password says so; the right one signs in and the header shows who, with Sign out."""
    cluster.add_user("dana", password="dana's passphrase")
    phone.goto(cluster.url + "/login.html")
    assert_fits_the_phone(phone)
    user = phone.get_by_label("User name")
    password = phone.get_by_label("Password")
    for field in (user, password):
        on_screen(phone, field)
        assert field.evaluate("(e) => getComputedStyle(e).fontSize") == "16px"
        assert field.bounding_box()["width"] >= PHONE["width"] * 0.7
    user.tap()
    user.fill("dana")
    password.fill("wrong")
    phone.get_by_role("button", name="Sign in").tap()
    error = phone.get_by_role("alert")
    expect(error).to_have_text("Wrong user name or password.")
    on_screen(phone, error)
    assert_fits_the_phone(phone)
    password.fill("dana's passphrase")
    phone.get_by_role("button", name="Sign in").tap()
    phone.wait_for_url(cluster.url + "/")
    phone.locator("#controls-toggle").tap()  # the account is among the folded controls
    session = phone.locator("#session")
    expect(session).to_contain_text("Signed in as dana")
    sign_out = session.get_by_role("button", name="Sign out")
    on_screen(phone, sign_out)
    assert sign_out.bounding_box()["height"] >= MIN_TARGET_PX
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
