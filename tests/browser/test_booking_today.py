"""Issue #17, items 1 and 4 (web): booking today from the planner. A keyboard selection of
today's whole day, and a tap on today on a phone, start the booking now (to the minute, the
native API's precision) instead of at 00:00, which the server refuses once more than an hour
has gone; the booking is made. A refused booking's message shows inside the dialog (an alert
that takes focus), and so does the form's own check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.conftest import NODE, Cluster, Dialogs, checked_page
from tests.browser.test_planner import at, book, focus_day, gpu, open_planner, track

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

PHONE = {"width": 390, "height": 844}


def minute_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)


def starts_now(form: Any, before: dt.datetime) -> None:
    """The form's start is the current minute (between ``before`` and now)."""
    value = form.locator("input[name=start]").input_value()
    start = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    assert before <= start <= minute_now(), f"start {value}, expected now ({before:%H:%M})"
    tomorrow = before.replace(hour=0, minute=0) + dt.timedelta(days=1)
    expect(form.locator("input[name=end]")).to_have_value(f"{tomorrow:%Y-%m-%dT%H:%M}")


def test_keyboard_selection_of_today_starts_now(page: Any, cluster: Cluster) -> None:
    before = minute_now()
    page.goto(cluster.url + "/")
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    track(page, 0).focus()  # the keyboard cursor starts on today in the current week
    page.keyboard.press("Enter")
    form = page.locator("#booking-dialog")
    expect(form).to_be_visible()
    starts_now(form, before)
    form.locator("input[name=label]").fill("from now on")
    form.get_by_role("button", name="Book").click()
    expect(form).to_be_hidden()
    expect(page.locator(".toast-success")).to_contain_text("Booked")
    expect(track(page, 0).locator("button.bar")).to_have_count(1)


@pytest.fixture
def phone(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    yield from checked_page(
        browser, dialogs, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )


def test_tap_on_today_on_a_phone_books_from_now(phone: Any, cluster: Cluster) -> None:
    before = minute_now()
    phone.goto(cluster.url + "/")
    target = track(phone, 3)
    expect(target).to_be_visible()
    share = (before.weekday() + 0.5) / 7  # today's middle, as a share of the week's track
    phone.locator("#grid-wrap").evaluate(
        """(wrap, share) => {
            const td = wrap.querySelector('tr.gpu-row[data-gpu$="gpu3"] td.track');
            wrap.scrollLeft = td.offsetLeft + td.offsetWidth * share - wrap.clientWidth / 2;
        }""",
        share,
    )
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    phone.touchscreen.tap(box["x"] + box["width"] * share, box["y"] + box["height"] / 2)
    form = phone.locator("#booking-dialog")
    expect(form).to_be_visible()
    starts_now(form, before)
    expect(form.locator("input[name=gpu]:checked")).to_have_attribute("value", gpu(3))
    phone.wait_for_timeout(600)  # the tap's own click has passed: it did not book by itself
    expect(form).to_be_visible()
    expect(phone.locator(".toast-success")).to_have_count(0)
    form.get_by_role("button", name="Book").tap()
    expect(form).to_be_hidden()
    expect(target.locator("button.bar")).to_have_count(1)


def test_errors_show_inside_the_dialog(page: Any, cluster: Cluster) -> None:
    book(cluster, [gpu(2)], at(1, 3, 10), at(1, 3, 14), user="bob", label="bob's run")
    open_planner(page, cluster, weeks_ahead=1)
    focus_day(page, 2, 3)
    page.keyboard.press("Enter")
    form = page.locator("#booking-dialog")
    form.get_by_role("button", name="Book").click()
    error = form.locator(".form-error[role=alert]")
    expect(error).to_contain_text("bob")  # the server's conflict message
    expect(error).to_be_focused()
    expect(page.locator(".toast-error")).to_have_count(0)
    box, dialog = error.bounding_box(), form.bounding_box()
    assert dialog["y"] <= box["y"] and box["y"] + box["height"] <= dialog["y"] + dialog["height"]
    form.locator("input[name=gpu]:checked").uncheck()  # the form's own check: same place
    form.get_by_role("button", name="Book").click()
    expect(error).to_have_text("Choose at least one GPU.")
    expect(error).to_be_focused()
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()
