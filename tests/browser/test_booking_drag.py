"""Issue #17, item 2 (web): moving and resizing bookings by dragging their bars on the week
grid. A drag shows a ghost of the new placement and, on drop, changes the booking through
``PATCH /api/v1/bookings/{id}`` (moved by whole hours, to another GPU row of the node for a
single-GPU booking, or one edge resized); a refused drop shows the server's message (who holds
the GPUs) and leaves the booking as it was; Escape cancels; a plain click still opens the
details; someone else's booking does not move for a user who may not change it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tests.browser.conftest import NODE, Cluster, instant, sign_in
from tests.browser.test_planner import at, bar, book, booking, gpu, hour_point, open_planner, track

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None


def hour_px(page: Any) -> float:
    """The width of one hour on a week track."""
    box = track(page, 0).bounding_box()
    return float(box["width"]) / 168


def press_in(page: Any, locator: Any, share: float) -> tuple[float, float]:
    """Press the mouse at ``share`` (0–1) of ``locator``'s width, in its middle."""
    box = locator.bounding_box()
    x, y = box["x"] + box["width"] * share, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    return x, y


def test_drag_moves_a_booking_by_whole_hours(page: Any, cluster: Cluster) -> None:
    made = book(cluster, [gpu(0)], at(1, 2, 10), at(1, 2, 14), label="move me")
    open_planner(page, cluster, weeks_ahead=1)
    x, y = press_in(page, bar(page, made["id"]), 0.5)
    page.mouse.move(x + 3 * hour_px(page), y, steps=6)
    ghost = page.locator("#grid .drag-ghost")
    expect(ghost).to_have_count(1)
    expect(ghost).to_contain_text(f"{at(1, 2, 13):%Y-%m-%d} 13:00")
    expect(bar(page, made["id"])).to_have_class("bar p-medium st-active mine drag-source")
    with page.expect_response(lambda r: r.request.method == "PATCH") as reply:
        page.mouse.up()
    assert reply.value.status == 200, reply.value.text()
    expect(page.locator(".toast-success")).to_contain_text(f"#{made['id']}")
    expect(ghost).to_have_count(0)
    expect(page.locator("#details")).to_be_hidden()  # the drop's click opened nothing
    stored = booking(cluster, made["id"])
    assert (instant(stored["start"]), instant(stored["end"])) == (at(1, 2, 13), at(1, 2, 17))
    left, _ = hour_point(track(page, 0), 2, 13)
    expect(bar(page, made["id"])).not_to_have_class("drag-source")
    assert abs(bar(page, made["id"]).bounding_box()["x"] - (left - hour_px(page) / 2)) < 2


def test_drag_onto_another_gpu_row_moves_it_there(page: Any, cluster: Cluster) -> None:
    made = book(cluster, [gpu(3)], at(1, 3, 8), at(1, 3, 12), label="to gpu 2")
    open_planner(page, cluster, weeks_ahead=1)
    x, _ = press_in(page, bar(page, made["id"]), 0.5)
    _, y = hour_point(track(page, 2), 3, 10)
    page.mouse.move(x, y, steps=6)
    expect(track(page, 2).locator(".drag-ghost")).to_have_count(1)
    page.mouse.up()
    expect(track(page, 2).locator(f'button.bar[data-booking="{made["id"]}"]')).to_have_count(1)
    stored = booking(cluster, made["id"])
    assert stored["gpu_ids"] == [gpu(2)]
    assert (instant(stored["start"]), instant(stored["end"])) == (at(1, 3, 8), at(1, 3, 12))


def test_drag_an_edge_resizes_the_booking(page: Any, cluster: Cluster) -> None:
    made = book(cluster, [gpu(1)], at(1, 4, 10), at(1, 4, 12), label="resize me")
    open_planner(page, cluster, weeks_ahead=1)
    target = bar(page, made["id"])
    target.hover(position={"x": target.bounding_box()["width"] - 1, "y": 5})
    expect(target).to_have_attribute("data-grip", "end")  # an ew-resize cursor
    x, y = press_in(page, target, 0.97)
    page.mouse.move(x + 3 * hour_px(page), y, steps=6)
    expect(page.locator("#grid .drag-ghost")).to_contain_text("15:00")
    page.mouse.up()
    expect(page.locator(".toast-success")).to_contain_text(f"#{made['id']}")
    stored = booking(cluster, made["id"])
    assert (instant(stored["start"]), instant(stored["end"])) == (at(1, 4, 10), at(1, 4, 15))


def test_a_drop_into_a_conflict_says_who_and_keeps_the_booking(page: Any, cluster: Cluster) -> None:
    book(cluster, [gpu(2)], at(1, 5, 10), at(1, 5, 14), user="bob", label="bob's slot")
    made = book(cluster, [gpu(2)], at(1, 5, 16), at(1, 5, 18), label="mine")
    open_planner(page, cluster, weeks_ahead=1)
    x, y = press_in(page, bar(page, made["id"]), 0.5)
    page.mouse.move(x - 5 * hour_px(page), y, steps=6)
    with page.expect_response(lambda r: r.request.method == "PATCH") as reply:
        page.mouse.up()
    assert reply.value.status == 409
    error = page.locator(".toast-error")
    expect(error).to_contain_text("bob")  # who holds the GPU (the server's message)
    expect(error).to_contain_text("next free")
    expect(page.locator("#grid .drag-ghost")).to_have_count(0)
    expect(bar(page, made["id"])).not_to_have_class("drag-source")
    stored = booking(cluster, made["id"])
    assert (instant(stored["start"]), instant(stored["end"])) == (at(1, 5, 16), at(1, 5, 18))


def test_escape_cancels_and_a_click_still_opens_the_details(page: Any, cluster: Cluster) -> None:
    made = book(cluster, [gpu(0)], at(1, 6, 8), at(1, 6, 14), label="stay put")
    patches: list[str] = []
    page.on("request", lambda r: r.method == "PATCH" and patches.append(r.url))
    open_planner(page, cluster, weeks_ahead=1)
    x, y = press_in(page, bar(page, made["id"]), 0.5)
    page.mouse.move(x + 4 * hour_px(page), y, steps=6)
    expect(page.locator("#grid .drag-ghost")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator("#grid .drag-ghost")).to_have_count(0)
    page.mouse.move(x, y, steps=3)  # back over the bar: releasing there makes a click
    page.mouse.up()
    expect(bar(page, made["id"])).not_to_have_class("drag-source")
    expect(page.locator("#details")).to_be_hidden()
    bar(page, made["id"]).click()  # a plain click: the details, as before
    expect(page.locator("#details-title")).to_have_text("stay put")
    assert patches == []
    stored = booking(cluster, made["id"])
    assert (instant(stored["start"]), instant(stored["end"])) == (at(1, 6, 8), at(1, 6, 14))


def test_someone_elses_booking_does_not_move(page: Any, cluster: Cluster) -> None:
    """carol (not an admin) cannot drag bob's booking: no grip, no ghost, no request."""
    theirs = book(cluster, [gpu(1)], at(2, 1, 8), at(2, 1, 14), user="bob", label="bob's")
    cluster.add_user("carol", password="carol's password")
    sign_in(page, cluster, "carol", "carol's password")
    patches: list[str] = []
    page.on("request", lambda r: r.method == "PATCH" and patches.append(r.url))
    open_planner(page, cluster, weeks_ahead=2)
    expect(page.locator("#session .session-user")).to_have_text("carol")
    target = bar(page, theirs["id"])
    target.hover()
    expect(target).not_to_have_attribute("data-grip", "move")
    x, y = press_in(page, target, 0.5)
    page.mouse.move(x + 4 * hour_px(page), y, steps=6)
    expect(page.locator("#grid .drag-ghost")).to_have_count(0)
    page.mouse.up()
    stored = booking(cluster, theirs["id"])
    assert (instant(stored["start"]), instant(stored["end"])) == (at(2, 1, 8), at(2, 1, 14))
    assert patches == []


def test_in_the_year_view_a_drag_moves_by_whole_days(page: Any, cluster: Cluster) -> None:
    day = dt.datetime.now(dt.UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    day += dt.timedelta(days=20)
    if (day.month, day.day) > (12, 20):  # keep the move inside one year (the view shows one)
        day = day.replace(year=day.year + 1, month=1, day=10)
    made = book(cluster, [gpu(3)], day, day + dt.timedelta(days=1), label="by days")
    page.goto(f"{cluster.url}/#view=year&date={day:%Y-%m-%d}")
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    target = bar(page, made["id"])
    target.scroll_into_view_if_needed()
    x, y = press_in(page, target, 0.5)
    page.mouse.move(x + 2 * 24, y, steps=5)  # two day columns (DAY_PX in views.js)
    expect(page.locator("#grid .drag-ghost")).to_contain_text(
        f"{day + dt.timedelta(days=2):%Y-%m-%d}"
    )
    page.mouse.up()
    expect(page.locator(".toast-success")).to_contain_text(f"#{made['id']}")
    stored = booking(cluster, made["id"])
    moved = (instant(stored["start"]), instant(stored["end"]))
    assert moved == (day + dt.timedelta(days=2), day + dt.timedelta(days=3))
