"""Issue #17, items 2 and 3 (web): changing a booking in the details panel's edit form (start,
end, GPUs, label, priority in one ``PATCH``; a refusal shown inside the form; a started
booking's start and GPUs read-only), a weekly series in the booking dialog (the occurrences
and the refused ones listed from a ``dry_run`` first, then booked all at once), and the
calendar feed's URLs (made, shown once, revoked) from the account area."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tests.browser.conftest import USER, Cluster, instant
from tests.browser.test_planner import (
    at,
    bar,
    book,
    booking,
    detail,
    focus_day,
    gpu,
    open_planner,
    track,
)

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None


def local(when: dt.datetime) -> str:
    """A datetime-local field's value (the browser runs in UTC, as the test machine does)."""
    return f"{when:%Y-%m-%dT%H:%M}"


def open_editor(page: Any, booking_id: int) -> Any:
    bar(page, booking_id).dispatch_event("click")  # a short bar: as the keyboard would
    page.locator("#details").get_by_role("button", name="Edit…").click()
    form = page.locator("#details form.edit-form")
    expect(form).to_be_visible()
    return form


def test_edit_form_changes_times_gpus_label_and_priority(page: Any, cluster: Cluster) -> None:
    made = book(cluster, [gpu(0)], at(1, 1, 10), at(1, 1, 12), label="before")
    open_planner(page, cluster, weeks_ahead=1)
    form = open_editor(page, made["id"])
    expect(form.locator("input[name=start]")).to_be_focused()
    expect(form.locator("input[name=start]")).to_have_value(local(at(1, 1, 10)))
    expect(page.locator("#details-list")).to_be_hidden()
    form.locator("input[name=start]").fill(local(at(1, 1, 13)))
    form.locator("input[name=end]").fill(local(at(1, 1, 16)))
    form.locator(f'input[name=gpu][value="{gpu(1)}"]').check()
    form.locator("input[name=label]").fill("after")
    form.locator("select[name=priority]").select_option("high")
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden()
    expect(page.locator("#details-title")).to_have_text("after")
    expect(detail(page, "GPUs")).to_have_text(f"{gpu(0)}, {gpu(1)}")
    expect(page.locator("#details").get_by_role("button", name="Edit…")).to_be_focused()
    stored = booking(cluster, made["id"])
    assert (instant(stored["start"]), instant(stored["end"])) == (at(1, 1, 13), at(1, 1, 16))
    assert stored["gpu_ids"] == [gpu(0), gpu(1)]
    assert (stored["label"], stored["priority"]) == ("after", "high")
    expect(track(page, 1).locator(f'button.bar[data-booking="{made["id"]}"]')).to_have_count(1)


def test_a_refused_edit_says_why_inside_the_form(page: Any, cluster: Cluster) -> None:
    book(cluster, [gpu(2)], at(1, 2, 10), at(1, 2, 14), user="bob", label="bob's run")
    made = book(cluster, [gpu(3)], at(1, 2, 10), at(1, 2, 14), label="mine")
    open_planner(page, cluster, weeks_ahead=1)
    form = open_editor(page, made["id"])
    form.locator(f'input[name=gpu][value="{gpu(2)}"]').check()
    form.get_by_role("button", name="Save").click()
    error = form.locator(".form-error[role=alert]")
    expect(error).to_contain_text("bob")  # who holds the GPU, and when it is next free
    expect(error).to_be_focused()
    expect(page.locator(".toast-error")).to_have_count(0)
    form.locator("input[name=end]").fill(local(at(1, 2, 9)))  # the form's own check
    form.get_by_role("button", name="Save").click()
    expect(error).to_have_text("End must be after start.")
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()
    expect(page.locator("#details-list")).to_be_visible()
    assert booking(cluster, made["id"])["gpu_ids"] == [gpu(3)]


def test_a_started_booking_keeps_its_start_and_gpus(page: Any, cluster: Cluster) -> None:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    made = book(cluster, [gpu(1)], now - dt.timedelta(minutes=5), now + dt.timedelta(hours=2),
                label="running")  # fmt: skip
    open_planner(page, cluster)
    form = open_editor(page, made["id"])
    expect(form.locator("input[name=start]")).to_have_attribute("readonly", "")
    expect(form.locator("input[name=gpu]").first).to_be_disabled()
    expect(form).to_contain_text("It has started")
    expect(form.locator("input[name=end]")).to_be_focused()
    form.locator("input[name=end]").fill(local(now + dt.timedelta(hours=3)))
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden()
    assert instant(booking(cluster, made["id"])["end"]) == now + dt.timedelta(hours=3)
    cluster.api("POST", f"/api/v1/bookings/{made['id']}/release")


def test_weekly_series_preview_then_book_all(page: Any, cluster: Cluster) -> None:
    """Thursdays of weeks 2, 3 and 4 ahead: bob holds week 3, so the preview lists it as
    refused with his name; on another GPU all three are free and "Book all 3" books them."""
    book(cluster, [gpu(0)], at(3, 3, 6), at(3, 3, 8), user="bob", label="bob's thursday")
    open_planner(page, cluster, weeks_ahead=2)
    focus_day(page, 0, 3)
    page.keyboard.press("Enter")
    form = page.locator("#booking-dialog")
    form.locator("input[name=label]").fill("weekly sync")
    form.locator("input[name=repeat_until]").fill(f"{at(4, 3, 0):%Y-%m-%d}")
    form.get_by_role("button", name="Check the series…").click()
    preview = form.locator(".series-preview")
    expect(preview.locator("li")).to_have_count(3)
    expect(preview.locator("li.refused")).to_have_count(1)
    expect(preview.locator("li.refused")).to_contain_text("bob")
    expect(preview).to_contain_text("1 of 3 weekly bookings would be refused")
    expect(form.get_by_role("button", name="Check again")).to_be_visible()

    form.locator(f'input[name=gpu][value="{gpu(0)}"]').uncheck()  # a change: preview stale
    expect(preview).to_be_hidden()
    form.locator(f'input[name=gpu][value="{gpu(1)}"]').check()
    form.get_by_role("button", name="Check the series…").click()
    expect(preview.locator("li.ok")).to_have_count(3)
    form.get_by_role("button", name="Book all 3").click()
    expect(form).to_be_hidden()
    expect(page.locator(".toast-success")).to_contain_text("and 2 more weekly")
    made = cluster.api("GET", "/api/v1/bookings", params={"user": USER, "limit": 1000}).json()
    starts = sorted(instant(b["start"]) for b in made["bookings"] if b["label"] == "weekly sync")
    assert starts == [at(2, 3, 0), at(3, 3, 0), at(4, 3, 0)]


def test_calendar_feed_urls_and_revoke(page: Any, cluster: Cluster) -> None:
    open_planner(page, cluster)
    page.locator("#session").get_by_role("button", name="Calendar feed…").click()
    dialog = page.locator("#feed-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Create feed URL").click()
    url = dialog.locator("input.feed-user-url")
    expect(url).to_be_visible()
    feed = url.input_value()
    assert feed.startswith(f"{cluster.url}/api/v1/feeds/user.ics?token=ppf_"), feed
    node_url = dialog.locator("input.feed-node-url").input_value()
    assert "/api/v1/feeds/nodes/" in node_url and "{node_id}" not in node_url
    expect(dialog).to_contain_text("Google Calendar")
    reply = page.request.get(feed)
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/calendar")
    assert "BEGIN:VCALENDAR" in reply.text()
    dialog.get_by_role("button", name="Revoke").click()
    expect(dialog.locator(".feed-status")).to_contain_text("Feed revoked")
    expect(url).to_have_count(0)
    assert page.request.get(feed).status == 404
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
