"""Issue #17, item 1 (web): times in the browser's time zone, UTC one click away. The browser
runs in Asia/Kolkata (UTC+05:30: a non-whole-hour offset shows any UTC slip): the week starts
Monday 00:00 local, a booking made at 12:00Z shows at 17:30, a drag over a day's 09:00–17:00
local books 03:30Z–11:30Z, booking today starts now and ends at local midnight, the "Times"
switch redraws in UTC and is remembered across reloads and pages, and the board, the queue and
the usage page (local days) show local times and name the zone. In New York a DST day is one
column of 23 hours. Item 4: on a phone (390×844) the year view's sticky month labels are whole
and readable, never fragments."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.browser.conftest import FOREIGN_NODE, NODE, Cluster, Dialogs, checked_page
from tests.browser.test_planner import book, booking, gpu, track

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

ZONE = "Asia/Kolkata"
LOCAL = ZoneInfo(ZONE)
PHONE = {"width": 390, "height": 844}
# Scroll the grid, then wait three frames: the scroll event, the labels' refit, its layout.
FRAMES_AFTER_SCROLL = """(wrap, x) => new Promise((done) => {
    wrap.scrollLeft = x;
    requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(done)));
})"""


@pytest.fixture
def page(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    """A 1280 px page whose browser lives in Asia/Kolkata."""
    yield from checked_page(
        browser, dialogs, viewport={"width": 1280, "height": 900}, timezone_id=ZONE
    )


@pytest.fixture
def phone(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    yield from checked_page(
        browser, dialogs, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )


def zone_name(page: Any) -> str:
    """The zone as this browser names it (ICU says "Asia/Calcutta" for Asia/Kolkata)."""
    name: str = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert ZoneInfo(name).utcoffset(dt.datetime(2026, 1, 1)) == dt.timedelta(hours=5, minutes=30)
    return name


def local_monday(weeks_ahead: int) -> dt.datetime:
    """Monday 00:00 in Kolkata of this week (0) or a later one."""
    today = dt.datetime.now(LOCAL).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=weeks_ahead)


def open_week(page: Any, cluster: Cluster, monday: dt.datetime) -> None:
    page.goto(f"{cluster.url}/#view=week&date={monday:%Y-%m-%d}")
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)


def share_of_week(page: Any, locator: Any, index: int) -> float:
    """Where ``locator``'s left edge lies on GPU ``index``'s week track: 0–1."""
    box, row = locator.bounding_box(), track(page, index).bounding_box()
    share: float = (box["x"] - row["x"]) / row["width"]
    return share


def test_week_and_bars_are_in_local_time(page: Any, cluster: Cluster) -> None:
    monday = local_monday(1)
    wednesday_noon_utc = (monday + dt.timedelta(days=2, hours=12)).replace(tzinfo=dt.UTC)
    made = book(cluster, [gpu(0)], wednesday_noon_utc, wednesday_noon_utc + dt.timedelta(hours=2),
                label="noon UTC")  # fmt: skip
    open_week(page, cluster, monday)
    sunday = monday + dt.timedelta(days=6)
    zone = zone_name(page)
    expect(page.locator("#week-label")).to_have_text(
        f"Mon {monday.day} {monday:%b} – Sun {sunday.day} {sunday:%b} {sunday.year} ({zone})"
    )
    heads = page.locator("#grid thead th.day-head .day-name")
    expect(heads.first).to_have_text(f"Mon {monday.day} {monday:%b}")
    wednesday = monday + dt.timedelta(days=2)
    expect(heads.nth(2)).to_have_text(f"Wed {wednesday.day} {wednesday:%b}")
    bar = page.locator(f'#grid button.bar[data-booking="{made["id"]}"]')
    expect(bar).to_be_visible()
    # 12:00Z is 17:30 in Kolkata: Wednesday's column, 17.5 hours in.
    expected = (2 + 17.5 / 24) / 7
    assert abs(share_of_week(page, bar, 0) - expected) < 0.002, share_of_week(page, bar, 0)
    day = f"{wednesday:%Y-%m-%d}"
    expect(bar).to_have_attribute("title", f"noon UTC — {made['user']}, medium priority, active, "
                                  f"{day} 17:30 UTC+05:30 to {day} 19:30 UTC+05:30")  # fmt: skip


def booked(response: Any) -> bool:
    return bool(response.url.endswith("/api/v1/bookings") and response.status == 201)


def test_a_local_drag_books_the_local_window(page: Any, cluster: Cluster) -> None:
    """Tomorrow-next-week 09:00–17:00 in Kolkata is 03:30Z–11:30Z on the wire."""
    monday = local_monday(1)
    open_week(page, cluster, monday)
    target = track(page, 2)
    target.scroll_into_view_if_needed()
    row = target.bounding_box()
    y = row["y"] + row["height"] / 2

    def x(hour: int) -> float:  # the middle of ``hour`` of Thursday, local
        return float(row["x"] + row["width"] * (3 * 24 + hour + 0.5) / 168)

    page.mouse.move(x(9), y)
    page.mouse.down()
    page.mouse.move(x(16), y, steps=4)
    page.mouse.up()
    form = page.locator("#booking-dialog")
    expect(form).to_be_visible()
    thursday = monday + dt.timedelta(days=3)
    expect(form.locator("input[name=start]")).to_have_value(f"{thursday:%Y-%m-%d}T09:00")
    expect(form.locator("input[name=end]")).to_have_value(f"{thursday:%Y-%m-%d}T17:00")
    expect(form.locator("label", has_text="Start")).to_contain_text(f"Start ({zone_name(page)})")
    form.locator("input[name=label]").fill("nine to five, local")
    with page.expect_response(booked) as made:
        form.get_by_role("button", name="Book").click()
    stored = booking(cluster, made.value.json()["booking"]["id"])
    start = dt.datetime.fromisoformat(stored["start"])
    end = dt.datetime.fromisoformat(stored["end"])
    assert start == thursday.replace(hour=9) and end == thursday.replace(hour=17), stored
    assert f"{start.astimezone(dt.UTC):%H:%M}" == "03:30", stored
    expect(page.locator(f'#grid button.bar[data-booking="{stored["id"]}"]')).to_be_visible()


def test_booking_today_starts_now_and_ends_at_local_midnight(page: Any, cluster: Cluster) -> None:
    before = dt.datetime.now(LOCAL).replace(second=0, microsecond=0)
    page.goto(cluster.url + "/")
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    track(page, 1).focus()  # the keyboard cursor starts on today (local)
    page.keyboard.press("Enter")
    form = page.locator("#booking-dialog")
    expect(form).to_be_visible()
    value = form.locator("input[name=start]").input_value()
    start = dt.datetime.fromisoformat(value).replace(tzinfo=LOCAL)
    assert before <= start <= dt.datetime.now(LOCAL), f"start {value}, expected now ({before})"
    midnight = before.replace(hour=0, minute=0) + dt.timedelta(days=1)
    expect(form.locator("input[name=end]")).to_have_value(f"{midnight:%Y-%m-%dT%H:%M}")
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()


def test_the_utc_switch_redraws_and_is_remembered(page: Any, cluster: Cluster) -> None:
    monday = local_monday(2)
    noon = (monday + dt.timedelta(days=1, hours=12)).replace(tzinfo=dt.UTC)
    made = book(cluster, [gpu(3)], noon, noon + dt.timedelta(hours=1), label="switch")
    open_week(page, cluster, monday)
    bar = page.locator(f'#grid button.bar[data-booking="{made["id"]}"]')
    expect(bar).to_be_visible()
    assert abs(share_of_week(page, bar, 3) - (1 + 17.5 / 24) / 7) < 0.002
    switch = page.get_by_role("group", name="Time zone")
    local = switch.get_by_role("button", name=zone_name(page))
    expect(local).to_have_attribute("aria-pressed", "true")
    switch.get_by_role("button", name="UTC", exact=True).click()
    expect(page.locator("#week-label")).to_contain_text("(UTC)")
    expect(switch.get_by_role("button", name="UTC", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(bar).to_have_attribute("title", re.compile(r" 12:00 UTC to .* 13:00 UTC$"))  # redrawn
    assert abs(share_of_week(page, bar, 3) - (1 + 12 / 24) / 7) < 0.002  # 12:00 on Tuesday
    page.reload()
    expect(page.locator("#week-label")).to_contain_text("(UTC)")
    expect(page.locator("#updated")).to_contain_text(" UTC ·")
    page.goto(cluster.url + "/board.html")  # every page follows the choice
    expect(page.locator("#status")).to_contain_text(" UTC ·")
    page.get_by_role("group", name="Time zone").get_by_role("button", name=zone_name(page)).click()
    expect(page.locator("#status")).to_contain_text(" UTC+05:30 ·")
    page.goto(f"{cluster.url}/#view=week&date={monday:%Y-%m-%d}")
    expect(page.locator("#week-label")).to_contain_text(f"({zone_name(page)})")


def test_board_and_queue_show_local_times(page: Any, cluster: Cluster) -> None:
    reply = cluster.api("GET", f"/api/v1/bookings?node={FOREIGN_NODE}&user=bob")
    assert reply.status_code == 200, reply.text
    ends = [dt.datetime.fromisoformat(b["end"]) for b in reply.json()["bookings"]]
    page.goto(cluster.url + "/board.html")
    held = page.locator(f'tr[data-gpu="{FOREIGN_NODE}-gpu1"] .holder')
    expect(held).to_contain_text("until")
    shown = [f"until {end.astimezone(LOCAL):%Y-%m-%d %H:%M} UTC+05:30" for end in ends]
    assert any(text in held.text_content() for text in shown), (held.text_content(), shown)
    expect(page.locator("#status")).to_contain_text(" UTC+05:30 ·")
    expect(page.get_by_role("group", name="Time zone")).to_contain_text(zone_name(page))
    page.goto(cluster.url + "/queue.html")
    expect(page.locator("#status")).to_contain_text(" UTC+05:30 ·")
    expect(page.get_by_role("group", name="Time zone")).to_contain_text(zone_name(page))
    with page.expect_request(lambda r: "/api/v1/usage/daily?" in r.url) as asked:
        page.goto(cluster.url + "/usage.html")  # the charts' days are local days
    assert "tz=Asia%2FCalcutta" in asked.value.url or "tz=Asia%2FKolkata" in asked.value.url
    assert "T18%3A30%3A00%2B00%3A00" in asked.value.url, asked.value.url  # local midnights
    expect(page.locator("#usage-summary")).to_contain_text(f"days ({zone_name(page)})")


def test_a_dst_day_is_one_column_of_23_hours(
    browser: Any, dialogs: Dialogs, cluster: Cluster
) -> None:
    """New York springs forward on March's second Sunday (next year's: always ahead): that
    day's 23 hours fill its column exactly, and the next day starts at the column line."""
    york = ZoneInfo("America/New_York")
    march = dt.datetime(dt.datetime.now(dt.UTC).year + 1, 3, 1, tzinfo=york)
    sunday = march + dt.timedelta(days=(6 - march.weekday()) % 7 + 7)
    monday = sunday + dt.timedelta(days=1)
    assert monday.astimezone(dt.UTC) - sunday.astimezone(dt.UTC) == dt.timedelta(hours=23)
    made = book(cluster, [gpu(1)], sunday, monday, label="dst day")
    for page in checked_page(browser, dialogs, viewport={"width": 1280, "height": 900},
                             timezone_id="America/New_York"):  # fmt: skip
        open_week(page, cluster, sunday - dt.timedelta(days=6))
        expect(page.locator("#grid thead th.day-head .day-name").nth(6)).to_have_text(
            f"Sun {sunday.day} Mar"
        )
        bar = page.locator(f'#grid button.bar[data-booking="{made["id"]}"]')
        expect(bar).to_be_visible()
        box, row = bar.bounding_box(), track(page, 1).bounding_box()
        assert abs((box["x"] - row["x"]) / row["width"] - 6 / 7) < 0.002, (box, row)
        assert abs(box["width"] / row["width"] - 1 / 7) < 0.002, (box, row)


# ---- item 4: the phone's year head -----------------------------------------------------------


def test_phone_year_head_shows_whole_month_labels(phone: Any, cluster: Cluster) -> None:
    year = dt.datetime.now(dt.UTC).year
    phone.goto(f"{cluster.url}/#view=year&date={year}-05-20")
    expect(phone.locator("#grid.view-year")).to_be_attached()
    expect(phone.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    wrap = phone.locator("#grid-wrap")
    for scroll in (0, 2000, 3300, 6000):  # the start, mid-March, mid-May and mid-September
        wrap.evaluate(FRAMES_AFTER_SCROLL, scroll)
        labels = phone.locator("#grid thead .month-name").evaluate_all(
            """(names, wrap) => {
                const frame = wrap.getBoundingClientRect();
                const gpuCol = wrap.querySelector('thead th.gpu-col').getBoundingClientRect();
                return names.map((n) => {
                  const r = n.getBoundingClientRect();
                  return { text: n.textContent, left: r.left, right: r.right,
                           full: n.scrollWidth <= n.clientWidth + 1,
                           seen: r.right > gpuCol.right + 1 && r.left < frame.right - 1,
                           min: gpuCol.right, max: frame.right };
                }).filter((l) => l.seen);
            }""",
            wrap.element_handle(),
        )
        assert labels, f"no month label in sight at scrollLeft {scroll}"
        for label in labels:  # whole: not under the GPU column, not past the frame, not cut
            assert label["left"] >= label["min"] - 0.5, label
            assert label["right"] <= label["max"] + 0.5, label
            assert label["full"], label
        for first, second in itertools.pairwise(labels):
            assert first["right"] <= second["left"] + 0.5, (first, second)
