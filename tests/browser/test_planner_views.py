"""The planner's views and navigation in Chromium: the year (day) view with a column per day,
scrolled to today, bars as wide as their days, drag-to-book whole days; the date picker, prev /
next and the view kept in the address; keyboard range selection with Shift; the help dialog;
the loading bar; the node filter learning a node that registers while the page is open; focus
kept on the grid across a live refresh."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tests.browser.conftest import NODE, TOKEN, USER, Cluster, screenshot

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

UTC = dt.UTC
DAY_PX = 24  # views.js


def gpu(index: int) -> str:
    return f"{NODE}-gpu{index}"


def track(page: Any, index: int) -> Any:
    return page.locator(f'tr.gpu-row[data-gpu="{gpu(index)}"] td.track')


def today() -> dt.datetime:
    return dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def a_week_ahead() -> dt.datetime:
    """A day a week from now, moved back into this year when that crosses New Year (the year
    view shows one year)."""
    day = today() + dt.timedelta(days=7)
    return day if day.year == today().year else today() - dt.timedelta(days=7)


def open_view(page: Any, cluster: Cluster, view: str, date: dt.datetime) -> None:
    page.goto(f"{cluster.url}/#view={view}&date={date:%Y-%m-%d}")
    expect(page.locator(f"#grid.view-{view}")).to_be_attached()
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)


def book(cluster: Cluster, index: int, start: dt.datetime, end: dt.datetime, label: str) -> int:
    body = {"node_id": NODE, "gpu_ids": [gpu(index)], "start": start.isoformat(),
            "end": end.isoformat(), "label": label}  # fmt: skip
    reply = cluster.api("POST", "/api/v1/bookings", json=body)
    assert reply.status_code == 201, reply.text
    booking_id: int = reply.json()["booking"]["id"]
    return booking_id


def box(locator: Any) -> dict[str, float]:
    found: dict[str, float] = locator.bounding_box()
    return found


# ---- year view -----------------------------------------------------------------------------


def test_year_view_has_a_column_per_day_and_opens_at_today(page: Any, cluster: Cluster) -> None:
    page.goto(cluster.url + "/")
    expect(page.locator("#grid.view-week")).to_be_attached()
    page.get_by_role("button", name="Year · days").click()
    expect(page.locator("#grid.view-year")).to_be_attached()
    year = today().year
    days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
    expect(page.locator("#grid thead tr.days th")).to_have_count(days)
    expect(page.locator("#grid thead tr.months th.month-head")).to_have_count(12)
    expect(page.locator("#week-label")).to_have_text(f"{year} (UTC)")
    expect(page.get_by_role("button", name="Year · days")).to_have_attribute("aria-pressed", "true")
    # Scrolled sideways so that today's column is in sight, right of the GPU names.
    head = box(page.locator("#grid thead th.day-head.today"))
    wrap = box(page.locator("#grid-wrap"))
    names = box(page.locator("#grid thead th.gpu-col"))
    assert (
        names["x"] + names["width"] <= head["x"]
        and head["x"] + head["width"] <= wrap["x"] + wrap["width"]
    )
    # The view and date are in the address: a reload (or a shared link) opens the same view.
    assert "view=year" in page.url
    page.reload()
    expect(page.locator("#grid.view-year")).to_be_attached()
    expect(page.locator("#week-label")).to_have_text(f"{year} (UTC)")


def test_year_view_bar_spans_its_days(page: Any, cluster: Cluster) -> None:
    first = a_week_ahead()
    made = book(cluster, 2, first, first + dt.timedelta(days=3), "three days")
    open_view(page, cluster, "year", first)
    bar = page.locator(f'#grid button.bar[data-booking="{made}"]')
    expect(bar).to_have_text("three days")
    bar.scroll_into_view_if_needed()
    column = page.locator(f'#grid thead tr.days th[data-day="{first.timetuple().tm_yday - 1}"]')
    drawn, head = box(bar), box(column)
    assert abs(drawn["x"] - head["x"]) <= 2, (drawn, head)
    assert abs(drawn["width"] - 3 * DAY_PX) <= 2, drawn


def test_year_view_drag_books_whole_days(page: Any, cluster: Cluster) -> None:
    first = a_week_ahead()
    open_view(page, cluster, "year", first)
    column = page.locator(f'#grid thead tr.days th[data-day="{first.timetuple().tm_yday - 1}"]')
    column.scroll_into_view_if_needed()
    head, row = box(column), box(track(page, 1))
    y = row["y"] + row["height"] / 2
    scrolled = page.locator("#grid-wrap").evaluate("(e) => e.scrollLeft")
    page.mouse.move(head["x"] + 3, y)
    page.mouse.down()
    page.mouse.move(head["x"] + 2 * DAY_PX + 20, y, steps=5)
    page.mouse.up()
    form = page.locator("#booking-dialog")
    expect(form).to_be_visible()
    assert page.locator("#grid-wrap").evaluate("(e) => e.scrollLeft") == scrolled  # no jump
    end = first + dt.timedelta(days=3)
    expect(form.locator("input[name=start]")).to_have_value(f"{first:%Y-%m-%d}T00:00")
    expect(form.locator("input[name=end]")).to_have_value(f"{end:%Y-%m-%d}T00:00")
    form.locator("input[name=label]").fill("year drag")
    form.get_by_role("button", name="Book").click()
    expect(form).to_be_hidden()
    expect(track(page, 1).locator("button.bar")).to_have_text("year drag")


# ---- navigation ----------------------------------------------------------------------------


def test_date_picker_prev_and_next(page: Any, cluster: Cluster) -> None:
    page.goto(cluster.url + "/#view=week")
    expect(page.locator("#grid.view-week")).to_be_attached()
    page.fill("#date-pick", "2027-03-10")
    expect(page.locator("#week-label")).to_have_text("Mon 8 Mar – Sun 14 Mar 2027 (UTC)")
    expect(page.locator("#grid thead th.day-head").first).to_contain_text("Mon 8 Mar")
    assert page.url.endswith("#view=week&date=2027-03-10")
    page.get_by_role("button", name="Next week").click()
    expect(page.locator("#week-label")).to_have_text("Mon 15 Mar – Sun 21 Mar 2027 (UTC)")
    page.get_by_role("button", name="Year · days").click()
    expect(page.locator("#week-label")).to_have_text("2027 (UTC)")
    page.get_by_role("button", name="Previous year").click()
    expect(page.locator("#week-label")).to_have_text("2026 (UTC)")
    expect(page.locator("#date-pick")).to_have_value("2026-03-17")
    page.get_by_role("button", name="Today").click()
    expect(page.locator("#date-pick")).to_have_value(f"{today():%Y-%m-%d}")


def test_keyboard_shift_selects_days_and_gpus(page: Any, cluster: Cluster) -> None:
    """Home, then Shift+→ twice and Shift+↓: three days on GPUs 0 and 1, booked with Enter."""
    monday = today() - dt.timedelta(days=today().weekday()) + dt.timedelta(weeks=2)
    open_view(page, cluster, "week", monday)
    track(page, 0).focus()
    for key in ("Home", "Shift+ArrowRight", "Shift+ArrowRight", "Shift+ArrowDown"):
        page.keyboard.press(key)
    expect(page.locator("#grid .selection")).to_have_count(2)
    expect(track(page, 1)).to_be_focused()
    expect(page.locator("#grid-status")).to_contain_text("selected 3 days × 2 GPUs")
    page.keyboard.press("Enter")
    form = page.locator("#booking-dialog")
    end = monday + dt.timedelta(days=3)
    expect(form.locator("input[name=start]")).to_have_value(f"{monday:%Y-%m-%d}T00:00")
    expect(form.locator("input[name=end]")).to_have_value(f"{end:%Y-%m-%d}T00:00")
    checked = form.locator("input[name=gpu]:checked")
    expect(checked).to_have_count(2)
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()
    expect(track(page, 1)).to_be_focused()


def test_focus_stays_on_the_grid_across_a_refresh(page: Any, cluster: Cluster) -> None:
    """A booking made elsewhere on the focused GPU redraws its row; focus and the keyboard
    cursor come back to the new row's track."""
    page.clock.install()
    monday = today() - dt.timedelta(days=today().weekday()) + dt.timedelta(weeks=3)
    open_view(page, cluster, "week", monday)
    track(page, 3).focus()
    page.keyboard.press("Home")
    book(cluster, 3, monday + dt.timedelta(days=4), monday + dt.timedelta(days=5), "elsewhere")
    page.clock.run_for(5_500)
    expect(track(page, 3)).to_contain_text("elsewhere")
    expect(track(page, 3)).to_be_focused()
    expect(track(page, 3).locator(".kbd-cursor")).to_have_count(1)


# ---- help, loading, node filter ------------------------------------------------------------


def test_help_dialog_opens_with_question_mark_and_closes_with_escape(
    page: Any, cluster: Cluster
) -> None:
    page.goto(cluster.url + "/")
    expect(page.locator("#grid tr.gpu-row").first).to_be_attached()
    help_dialog = page.locator("#help-dialog")
    page.keyboard.press("?")
    expect(help_dialog).to_be_visible()
    expect(help_dialog.get_by_role("heading", name="Using the planner")).to_be_visible()
    expect(help_dialog).to_contain_text("Shift")
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
    opener = page.get_by_role("button", name="Help")
    opener.click()
    expect(help_dialog).to_be_visible()
    help_dialog.get_by_role("button", name="Close help").click()
    expect(help_dialog).to_be_hidden()
    expect(opener).to_be_focused()


def test_loading_bar_shows_while_the_calendar_loads(page: Any, cluster: Cluster) -> None:
    page.goto(cluster.url + "/#view=week")
    expect(page.locator("#grid tr.gpu-row").first).to_be_attached()
    expect(page.locator("#loading")).to_be_hidden()
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route("**/api/v1/calendar?*", hold)
    page.get_by_role("button", name="Next week").click()
    expect(page.locator("#loading")).to_be_visible()
    expect(page.locator("#grid")).to_have_attribute("aria-busy", "true")
    for route in held:
        route.continue_()
    page.unroute("**/api/v1/calendar?*")
    expect(page.locator("#loading")).to_be_hidden()
    expect(page.locator("#grid")).to_have_attribute("aria-busy", "false")


def test_node_filter_learns_a_node_registered_later_and_is_remembered(
    page: Any, cluster: Cluster
) -> None:
    page.clock.install()
    page.goto(cluster.url + "/")
    options = page.locator("#node-filter option")
    expect(options.filter(has_text=f"({NODE})")).to_have_count(1)
    expect(options.filter(has_text="(late-node)")).to_have_count(0)
    devices = [{"index": 0, "uuid": "GPU-LATE-0", "name": "NVIDIA L4", "memory_mb": 23034}]
    registration = {"node_id": "late-node", "hostname": "late.example", "address": "10.0.0.7",
                    "agent_version": "0.1.0", "interval_s": 300.0, "os_user": USER, "pid": 7,
                    "reader": "fake", "devices": devices}  # fmt: skip
    reply = cluster.api("POST", "/api/v1/agents/register", json=registration,
                        headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    page.clock.run_for(5_500)
    expect(options.filter(has_text="(late-node)")).to_have_count(1)
    page.select_option("#node-filter", "late-node")
    expect(page.locator("#grid tbody[data-node]")).to_have_count(1)
    expect(page.locator('#grid tbody[data-node="late-node"] tr.gpu-row')).to_have_count(1)
    # The choice is remembered; once the node is gone, the page falls back to all nodes.
    page.reload()
    expect(page.locator("#node-filter")).to_have_value("late-node")
    expect(page.locator("#grid tbody[data-node]")).to_have_count(1)
    page.evaluate("localStorage.setItem('procplan.nodeFilter', JSON.stringify('no-such-node'))")
    page.reload()
    expect(page.locator("#node-filter")).to_have_value("")
    expect(page.locator(f'#grid tbody[data-node="{NODE}"]')).to_have_count(1)
    expect(page.locator(".toast-error")).to_have_count(0)


def test_year_view_screenshot(page: Any, cluster: Cluster) -> None:
    """Next January to March in the year view with a few realistic bookings (written only with
    ``PROCPLAN_SCREENSHOTS=1``)."""
    year = today().year + 1
    plan = [
        (0, (1, 5), (1, 19), "llama-70b pretraining", "high"),
        (1, (1, 5), (1, 19), "llama-70b pretraining", "high"),
        (2, (1, 7), (1, 9), "ablation A", "medium"),
        (2, (1, 12), (1, 14), "ablation B", "medium"),
        (3, (1, 11), (1, 25), "diffusion finetune", "low"),
        (0, (1, 26), (2, 6), "eval sweep", "medium"),
        (1, (2, 2), (2, 20), "RL from feedback", "high"),
        (3, (2, 9), (2, 12), "notebook", "low"),
    ]
    for index, (m0, d0), (m1, d1), label, priority in plan:
        body = {"node_id": NODE, "gpu_ids": [gpu(index)], "label": label, "priority": priority,
                "start": dt.datetime(year, m0, d0, tzinfo=UTC).isoformat(),
                "end": dt.datetime(year, m1, d1, tzinfo=UTC).isoformat()}  # fmt: skip
        reply = cluster.api(
            "POST", "/api/v1/bookings", json=body, headers={"X-ProcPlan-User": "alice"}
        )
        assert reply.status_code == 201, reply.text
    open_view(page, cluster, "year", dt.datetime(year, 1, 1, tzinfo=UTC))
    expect(page.locator("#grid button.bar", has_text="llama-70b pretraining")).to_have_count(2)
    screenshot(page, "planner-year.png", full_page=False)
