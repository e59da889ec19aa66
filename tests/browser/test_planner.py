"""The weekly planner in Chromium against a real server: drag-select and book, keyboard booking,
the server's 409 shown on a conflict, labels with markup rendered as text, the manage panel
(cancel after an in-panel confirmation, release early, extend by an hour), node folding that
survives a reload, and the "My bookings" filter. Any page dialog or script error fails a test
(see the ``page`` fixture)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from tests.browser.conftest import (
    NODE,
    USER,
    XSS,
    Cluster,
    Dialogs,
    screenshot,
    sign_in,
    until,
)

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

UTC = dt.UTC
HIGH_RGB = "rgb(198, 40, 40)"  # --high in style.css


def monday(weeks_ahead: int) -> dt.datetime:
    """Monday 00:00 UTC of this week (0) or a later one."""
    today = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=weeks_ahead)


def at(weeks_ahead: int, day: int, hour: int) -> dt.datetime:
    return monday(weeks_ahead) + dt.timedelta(days=day, hours=hour)


def gpu(index: int) -> str:
    return f"{NODE}-gpu{index}"


def book(cluster: Cluster, gpu_ids: list[str], start: dt.datetime, end: dt.datetime,
         user: str = USER, **fields: Any) -> dict[str, Any]:  # fmt: skip
    """A booking of ``user``'s, made by this process (an admin: it acts for ``user``)."""
    body = {"node_id": NODE, "gpu_ids": gpu_ids, "start": start.isoformat(),
            "end": end.isoformat(), **fields}  # fmt: skip
    reply = cluster.api("POST", "/api/v1/bookings", json=body, headers={"X-ProcPlan-User": user})
    assert reply.status_code == 201, reply.text
    booking: dict[str, Any] = reply.json()["booking"]
    return booking


def booking(cluster: Cluster, booking_id: int) -> dict[str, Any]:
    reply = cluster.api("GET", f"/api/v1/bookings/{booking_id}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body.get("booking", body)


def open_planner(page: Any, cluster: Cluster, weeks_ahead: int = 0) -> None:
    page.goto(cluster.url + "/")
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    for _ in range(weeks_ahead):
        label = page.locator("#week-label").text_content()
        page.click("#week-next")
        expect(page.locator("#week-label")).not_to_have_text(label or "")
    first_day = monday(weeks_ahead)
    expect(page.locator("#grid thead th.day-head").first).to_contain_text(
        f"{first_day.day} {first_day:%b}"
    )


def track(page: Any, index: int) -> Any:
    """The week-long track cell of GPU ``index`` (bars are placed inside it by time)."""
    return page.locator(f'tr.gpu-row[data-gpu="{gpu(index)}"] td.track')


def bar(page: Any, booking_id: int) -> Any:
    return page.locator(f'#grid button.bar[data-booking="{booking_id}"]').first


def hour_point(target: Any, day: int, hour: int) -> tuple[float, float]:
    """The middle of ``hour`` of ``day`` (0 = Monday) on a week track."""
    target.scroll_into_view_if_needed()
    box = target.bounding_box()
    return box["x"] + box["width"] * (day * 24 + hour + 0.5) / 168, box["y"] + box["height"] / 2


def span_of(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["x"], box["x"] + box["width"]


def focus_day(page: Any, index: int, day: int) -> None:
    """Tab stop on GPU ``index``'s track, then the keyboard cursor to ``day`` (the cursor
    starts on the week's Monday when today is not in the shown week)."""
    track(page, index).focus()
    page.keyboard.press("Home")
    for _ in range(day):
        page.keyboard.press("ArrowRight")


def detail(page: Any, term: str) -> Any:
    return page.locator("#details-list dt", has_text=term).locator("xpath=following-sibling::dd[1]")


# ---- booking -------------------------------------------------------------------------------


def test_drag_select_and_book(page: Any, cluster: Cluster) -> None:
    """Drag from GPU 0 Tue 09:00 to GPU 1 Tue 17:00 of next week: the form is prefilled with
    both GPUs and 09:00–18:00; booking draws the bar in both rows."""
    open_planner(page, cluster, weeks_ahead=1)
    page.mouse.move(*hour_point(track(page, 0), 1, 9))
    page.mouse.down()
    page.mouse.move(*hour_point(track(page, 1), 1, 13), steps=4)
    expect(page.locator("#grid .selection")).to_have_count(2)
    page.mouse.move(*hour_point(track(page, 1), 1, 17), steps=4)
    page.mouse.up()

    form = page.locator("#booking-dialog")
    expect(form).to_be_visible()
    day = at(1, 1, 0)
    expect(form.locator("input[name=start]")).to_have_value(f"{day:%Y-%m-%d}T09:00")
    expect(form.locator("input[name=end]")).to_have_value(f"{day:%Y-%m-%d}T18:00")
    checked = form.locator("input[name=gpu]:checked")
    expect(checked).to_have_count(2)
    assert [checked.nth(i).get_attribute("value") for i in range(2)] == [gpu(0), gpu(1)]
    form.locator("input[name=label]").fill("drag booking")
    form.locator("select[name=priority]").select_option("high")
    form.get_by_role("button", name="Book").click()

    expect(form).to_be_hidden()
    expect(page.locator(".toast-success")).to_contain_text("2 GPUs")
    for index in (0, 1):
        expect(track(page, index).locator("button.bar")).to_have_text("drag booking")
    booking_id = int(track(page, 0).locator("button.bar").get_attribute("data-booking"))
    stored = booking(cluster, booking_id)
    assert stored["gpu_ids"] == [gpu(0), gpu(1)]
    assert stored["priority"] == "high" and stored["user"] == USER
    assert dt.datetime.fromisoformat(stored["start"]) == at(1, 1, 9)
    assert dt.datetime.fromisoformat(stored["end"]) == at(1, 1, 18)


def test_keyboard_booking(page: Any, cluster: Cluster) -> None:
    """Focus a GPU's track, move the day cursor with the arrows, Enter opens the form for the
    whole day, Enter in the label books; focus comes back to the track and the label of the
    last booking is prefilled next time."""
    open_planner(page, cluster, weeks_ahead=1)
    target = track(page, 3)
    focus_day(page, 3, 2)
    expect(target.locator(".kbd-cursor")).to_have_count(1)
    page.keyboard.press("Enter")
    form = page.locator("#booking-dialog")
    expect(form).to_be_visible()
    day = at(1, 2, 0)
    expect(form.locator("input[name=start]")).to_have_value(f"{day:%Y-%m-%d}T00:00")
    next_day = day + dt.timedelta(days=1)
    expect(form.locator("input[name=end]")).to_have_value(f"{next_day:%Y-%m-%d}T00:00")
    form.locator("input[name=label]").fill("keyboard booking")
    form.locator("input[name=label]").press("Enter")
    expect(form).to_be_hidden()
    expect(target.locator("button.bar")).to_have_text("keyboard booking")
    expect(target).to_be_focused()  # focus returns to the track that opened the form
    page.keyboard.press("Enter")
    expect(form.locator("input[name=label]")).to_have_value("keyboard booking")
    form.get_by_role("button", name="Cancel").click()
    expect(form).to_be_hidden()


def test_conflict_shows_the_server_error(page: Any, cluster: Cluster) -> None:
    book(cluster, [gpu(2)], at(1, 3, 10), at(1, 3, 14), user="bob", label="bob's run")
    # The server's own message for this request, to compare with what the page shows.
    body = {"node_id": NODE, "gpu_ids": [gpu(2)], "start": at(1, 3, 0).isoformat(),
            "end": at(1, 4, 0).isoformat(), "priority": "medium"}  # fmt: skip
    reply = cluster.api("POST", "/api/v1/bookings", json=body)
    assert reply.status_code == 409, reply.text
    message = reply.json()["error"]

    open_planner(page, cluster, weeks_ahead=1)
    expect(track(page, 2)).to_contain_text("bob's run")  # beside its narrow bar
    focus_day(page, 2, 3)
    page.keyboard.press("Enter")
    form = page.locator("#booking-dialog")
    form.locator("input[name=label]").fill("clashes with bob")
    form.get_by_role("button", name="Book").click()
    error = form.locator(".form-error[role=alert]")  # inside the dialog, not behind it
    expect(error).to_have_text(message)
    expect(error).to_be_focused()
    expect(page.locator(".toast-error")).to_have_count(0)
    expect(form).to_be_visible()  # kept open so the user can change the slot
    expect(track(page, 2).locator("button.bar")).to_have_count(1)


def test_booking_over_a_running_job_says_it_will_preempt_it(
    page: Any, cluster: Cluster, tmp_path: Path
) -> None:
    """Ledger rule 4 in the form: carol picks the GPU an open-ended job of another user runs
    on; before she books, the form says the job will be preempted when her booking begins
    (``/api/v1/bookings/check``), and after booking a notice says it again."""
    job_id = cluster.submit(tmp_path, "sleep", "300", gpu_count=1)
    until(lambda: cluster.job(job_id)["state"] == "running")
    [held] = cluster.job(job_id)["allocated_gpus"]
    index = int(held.rsplit("gpu", 1)[1])
    cluster.add_user("carol", password="carol's password")
    sign_in(page, cluster, "carol", "carol's password")
    try:
        open_planner(page, cluster, weeks_ahead=3)
        focus_day(page, index, 4)
        page.keyboard.press("Enter")
        form = page.locator("#booking-dialog")
        expect(form).to_be_visible()
        warning = f"Job {job_id} of {USER} on {held} will be preempted: SIGTERM at"
        expect(form.locator("#bf-check")).to_contain_text(warning)
        form.locator("input[name=label]").fill("over a job")
        form.get_by_role("button", name="Book").click()
        expect(form).to_be_hidden()
        expect(page.locator(".toast-info", has_text=warning)).to_have_count(1)
        made = int(track(page, index).locator("button.bar").first.get_attribute("data-booking"))
        assert booking(cluster, made)["user"] == "carol"
        cluster.api("POST", f"/api/v1/bookings/{made}/cancel")
    finally:
        cluster.cancel_all()


def test_label_with_markup_renders_as_text(page: Any, cluster: Cluster, dialogs: Dialogs) -> None:
    made = book(cluster, [gpu(3)], at(1, 4, 8), at(1, 4, 20), label=XSS)
    open_planner(page, cluster, weeks_ahead=1)
    expect(bar(page, made["id"])).to_have_text(XSS)
    bar(page, made["id"]).click()
    expect(page.locator("#details-title")).to_have_text(XSS)
    assert page.locator("img").count() == 0
    page.wait_for_timeout(300)  # an injected onerror would have fired by now
    assert dialogs.seen == []


# ---- manage panel --------------------------------------------------------------------------


def test_cancel_asks_for_confirmation(page: Any, cluster: Cluster, dialogs: Dialogs) -> None:
    made = book(cluster, [gpu(0)], at(1, 4, 8), at(1, 4, 18), label="to cancel")
    open_planner(page, cluster, weeks_ahead=1)
    bar(page, made["id"]).click()
    panel = page.locator("#details")
    expect(panel).to_be_visible()
    expect(page.locator("#details-title")).to_have_text("to cancel")
    expect(detail(page, "Status")).to_have_text("active")
    expect(panel.get_by_role("button", name="Release now")).to_be_hidden()  # not started yet

    # "Keep it" keeps the booking.
    panel.get_by_role("button", name="Cancel booking…").click()
    expect(page.locator("#details-confirm")).to_be_visible()
    expect(panel.get_by_role("button", name="Keep it")).to_be_focused()
    panel.get_by_role("button", name="Keep it").click()
    expect(page.locator("#details-confirm")).to_be_hidden()
    assert booking(cluster, made["id"])["status"] == "active"

    panel.get_by_role("button", name="Cancel booking…").click()
    panel.get_by_role("button", name="Yes, cancel it").click()
    expect(page.locator(".toast-success")).to_contain_text(f"#{made['id']} cancelled")
    expect(panel).to_be_hidden()
    expect(page.locator(f'#grid [data-booking="{made["id"]}"]')).to_have_count(0)
    assert booking(cluster, made["id"])["status"] == "cancelled"
    assert dialogs.seen == []  # confirmed inside the panel, not with window.confirm


def test_extend_by_one_hour(page: Any, cluster: Cluster) -> None:
    made = book(cluster, [gpu(1)], at(1, 5, 8), at(1, 5, 12), label="to extend")
    open_planner(page, cluster, weeks_ahead=1)
    bar(page, made["id"]).click()
    page.get_by_role("button", name="Extend +1 h").click()
    expect(detail(page, "End")).to_have_text(f"{at(1, 5, 13):%Y-%m-%d} 13:00 UTC")
    expect(page.locator(".toast-success")).to_contain_text("now ends")
    assert dt.datetime.fromisoformat(booking(cluster, made["id"])["end"]) == at(1, 5, 13)


def test_release_a_running_booking_early(page: Any, cluster: Cluster) -> None:
    """A high-priority booking running now sits in today's highlighted column with its priority
    colour; releasing it ends it now (completed, end truncated)."""
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    made = book(cluster, [gpu(3)], now - dt.timedelta(minutes=1), now + dt.timedelta(hours=3),
                label="running now", priority="high")  # fmt: skip
    open_planner(page, cluster)
    running = bar(page, made["id"])
    expect(track(page, 3)).to_contain_text("running now")  # beside its short bar
    today = track(page, 3).locator(".today-col")
    expect(today).to_have_count(1)
    left, right = span_of(today)
    start, _ = span_of(running)
    assert left - 1 <= start <= right, (left, start, right)  # starts inside today's column
    assert running.evaluate("b => getComputedStyle(b).backgroundColor") == HIGH_RGB
    running.click()
    page.get_by_role("button", name="Release now").click()
    expect(page.locator(".toast-success")).to_contain_text(f"#{made['id']} released")
    expect(detail(page, "Status")).to_have_text("completed")
    expect(page.get_by_role("button", name="Release now")).to_be_hidden()
    expect(page.get_by_role("button", name="Extend +1 h")).to_be_hidden()
    stored = booking(cluster, made["id"])
    assert stored["status"] == "completed"
    assert dt.datetime.fromisoformat(stored["end"]) <= now + dt.timedelta(minutes=2)


def test_a_booked_job_that_ends_releases_its_booking(
    page: Any, cluster: Cluster, tmp_path: Path
) -> None:
    """Ledger rule 5 on the page: a job started on a booking with ``release_booking`` ends,
    and the booking ends with it (completed, end truncated to about now), as the planner and
    the details panel show."""
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    made = book(cluster, [gpu(0)], now - dt.timedelta(minutes=1), now + dt.timedelta(hours=3),
                label="until the job ends")  # fmt: skip
    job_id = cluster.submit(tmp_path, "true", booking_id=made["id"], release_booking=True)
    until(lambda: cluster.job(job_id)["state"] == "completed")
    until(lambda: booking(cluster, made["id"])["status"] == "completed")
    open_planner(page, cluster)
    # A minute-long bar on a week's track is too thin to click: its class says its status,
    # and its details open from the keyboard-reachable button as from a click.
    expect(bar(page, made["id"])).to_have_class("bar p-medium st-completed mine")
    bar(page, made["id"]).dispatch_event("click")
    expect(detail(page, "Status")).to_have_text("completed")
    expect(page.get_by_role("button", name="Release now")).to_be_hidden()
    stored = booking(cluster, made["id"])
    assert dt.datetime.fromisoformat(stored["end"]) <= now + dt.timedelta(minutes=2)


# ---- view settings -------------------------------------------------------------------------


def test_folded_node_stays_folded_after_reload(page: Any, cluster: Cluster) -> None:
    open_planner(page, cluster)
    rows = page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')
    toggle = page.locator(f'tbody[data-node="{NODE}"] button.fold')
    expect(toggle).to_have_attribute("aria-expanded", "true")
    toggle.click()
    expect(rows.first).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    page.reload()
    expect(page.locator(f'tbody[data-node="{NODE}"] button.fold')).to_have_attribute(
        "aria-expanded", "false"
    )
    expect(rows).to_have_count(4)
    for i in range(4):
        expect(rows.nth(i)).to_be_hidden()
    expect(page.locator("tbody:not([data-node='gpu-node']) tr.gpu-row").first).to_be_visible()
    page.locator(f'tbody[data-node="{NODE}"] button.fold').click()
    expect(rows.first).to_be_visible()
    page.reload()
    expect(rows.nth(3)).to_be_visible()


def test_my_bookings_fades_the_others(page: Any, cluster: Cluster) -> None:
    now = dt.datetime.now(UTC).replace(second=0, microsecond=0)
    mine = book(cluster, [gpu(2)], now - dt.timedelta(minutes=30), now + dt.timedelta(hours=4),
                label="mine")  # fmt: skip
    theirs = book(cluster, [gpu(1)], now - dt.timedelta(minutes=30), now + dt.timedelta(hours=4),
                  user="carol", label="carol's")  # fmt: skip
    open_planner(page, cluster)
    expect(bar(page, mine["id"])).to_have_class("bar p-medium st-active mine")
    expect(bar(page, theirs["id"])).to_have_class("bar p-medium st-active")
    toggle = page.get_by_role("button", name="My bookings")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    opacity = "b => getComputedStyle(b).opacity"
    assert float(bar(page, theirs["id"]).evaluate(opacity)) < 0.5
    assert float(bar(page, mine["id"]).evaluate(opacity)) == 1
    # The toggle survives a reload; signed in as carol, "mine" is carol's booking.
    cluster.add_user("carol", password="carol's password")
    sign_in(page, cluster, "carol", "carol's password")
    page.reload()
    expect(page.locator("#session .session-user")).to_have_text("carol")
    expect(page.get_by_role("button", name="My bookings")).to_have_attribute("aria-pressed", "true")
    expect(bar(page, theirs["id"])).to_have_class("bar p-medium st-active mine")
    expect(bar(page, mine["id"])).to_have_class("bar p-medium st-active")
    assert float(bar(page, mine["id"]).evaluate(opacity)) < 0.5


def test_live_refresh_shows_bookings_made_elsewhere(page: Any, cluster: Cluster) -> None:
    """The 5 s refresh draws a booking that someone else made, without a reload; polls in
    between get 304 Not Modified (ETag) and leave the grid alone."""
    page.clock.install()
    open_planner(page, cluster, weeks_ahead=1)
    made = book(cluster, [gpu(2)], at(1, 6, 6), at(1, 6, 18), user="erin", label="from the CLI")
    page.wait_for_timeout(300)
    expect(bar(page, made["id"])).to_have_count(0)
    page.evaluate("window.__notReloaded = true")
    page.clock.run_for(5_500)
    expect(bar(page, made["id"])).to_have_text("from the CLI")
    assert page.evaluate("window.__notReloaded") is True
    kept = page.locator(f'tr.gpu-row[data-gpu="{gpu(0)}"]').element_handle()
    with page.expect_response(lambda r: "/api/v1/calendar" in r.url) as reply:
        page.clock.run_for(5_500)
    assert reply.value.status == 304
    assert kept.evaluate("row => row.isConnected")  # an unchanged row is not rebuilt


def test_planner_screenshot(page: Any, cluster: Cluster) -> None:
    """Week after next at 1400×900, with a few realistic bookings (written only with
    ``PROCPLAN_SCREENSHOTS=1``)."""
    plan = [
        ([0, 1, 2, 3], (0, 9), (0, 18), "alice", "high", "llama-70b finetune"),
        ([0], (1, 8), (2, 20), "bob", "medium", "ablation sweep"),
        ([1, 2], (1, 13), (1, 17), USER, "low", "notebook"),
        ([3], (2, 0), (4, 0), "carol", "medium", "eval nightly"),
        ([1], (3, 10), (3, 12), "dave", "high", "paper deadline run"),
        ([0, 1], (4, 6), (5, 6), "alice", "low", "data prep"),
    ]
    for gpus, (d0, h0), (d1, h1), user, priority, label in plan:
        book(cluster, [gpu(i) for i in gpus], at(2, d0, h0), at(2, d1, h1), user=user,
             priority=priority, label=label)  # fmt: skip
    page.set_viewport_size({"width": 1400, "height": 900})
    open_planner(page, cluster, weeks_ahead=2)
    expect(page.locator("#grid button.bar", has_text="llama-70b finetune")).to_have_count(4)
    screenshot(page, "planner-week.png")
