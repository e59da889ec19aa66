"""The audit log page (issue #12, the web face of ``procplan audit``) in Chromium against a
real server.

History made once for the module: root (this host's user, an admin) books a GPU for bob and
cancels it, books one for itself; bob, signed in with a password, books one himself and makes
an API token whose name is an HTML injection attempt.

- root's page lists the admin's cancel of bob's booking with the "as admin" badge, owner bob,
  the time in local time with the ISO instant in its title; the user filter ``bob`` narrows the
  list to the entries where bob acted or owns the item (and is kept in the address).
- bob's page, signed in, is "My activity": only his entries (the admin's changes to his
  booking included), no user filter, and ``?user=`` in the address changes nothing.
- Paging (100 a page) with Newer/Older; an anonymous visitor gets a sign-in prompt; 401/403/
  other errors from the server are explained; at 390 px the page never scrolls sideways (the
  table scrolls in its own frame).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.browser.conftest import NODE, USER, Cluster, Dialogs, checked_page, sign_in

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

BOB_PASSWORD = "bob's audit passphrase"
PWN = '<img src=x onerror="window.__pwned=1">'
PHONE = {"width": 390, "height": 844}


def slot(weeks_ahead: int, hour: int) -> tuple[str, str]:
    """One hour, ``weeks_ahead`` weeks from now (clear of the other modules' bookings)."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today + dt.timedelta(weeks=weeks_ahead, hours=hour)
    return start.isoformat(), (start + dt.timedelta(hours=1)).isoformat()


def booking_body(gpu: int, weeks_ahead: int, hour: int, **fields: Any) -> dict[str, Any]:
    start, end = slot(weeks_ahead, hour)
    return {"node_id": NODE, "gpu_ids": [f"{NODE}-gpu{gpu}"], "start": start, "end": end, **fields}


@pytest.fixture(scope="module")
def history(cluster: Cluster, browser: Any) -> dict[str, int]:
    """The module's audited changes; returns the booking ids."""
    cluster.add_user("bob", password=BOB_PASSWORD)
    made = cluster.api("POST", "/api/v1/bookings", json=booking_body(1, 9, 8, user="bob"))
    assert made.status_code == 201, made.text
    for_bob = made.json()["booking"]["id"]
    cancelled = cluster.api("POST", f"/api/v1/bookings/{for_bob}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    own = cluster.api("POST", "/api/v1/bookings", json=booking_body(2, 9, 8, label="root's"))
    assert own.status_code == 201, own.text
    # bob, signed in on a browser, acts himself.
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, cluster, "bob", BOB_PASSWORD)
        reply = page.request.post(cluster.url + "/api/v1/bookings",
                                  data=booking_body(3, 9, 8, label="bob's own"))  # fmt: skip
        assert reply.status == 201, reply.text()
        by_bob = reply.json()["booking"]["id"]
        token = page.request.post(cluster.url + "/api/v1/tokens", data={"name": PWN})
        assert token.status == 201, token.text()
    finally:
        context.close()
    return {"for_bob": for_bob, "own": own.json()["booking"]["id"], "by_bob": by_bob}


@pytest.fixture
def phone(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    yield from checked_page(browser, dialogs, viewport=PHONE, is_mobile=True, has_touch=True)


def rows(page: Any) -> Any:
    return page.locator("#audit tbody tr")


def entry(page: Any, action: str, target: str) -> Any:
    return page.locator(f'#audit tbody tr[data-action="{action}"]').filter(
        has=page.locator("td.target", has_text=target)
    )


def shown(page: Any) -> list[dict[str, str]]:
    """The table's rows as {actor, action, target, owner, badge}."""
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "#audit tbody tr",
        """(rows) => rows.map((r) => ({
            actor: r.querySelector('.actor-name').textContent,
            action: r.dataset.action,
            target: r.querySelector('td.target').textContent,
            owner: r.querySelector('td.owner').textContent,
            badge: r.querySelector('.badge-as-admin')?.textContent || '',
        }))""",
    )


def assert_only(entries: list[dict[str, str]], user: str) -> None:
    assert entries, "no entries shown"
    strangers = [e for e in entries if user not in (e["actor"], e["owner"])]
    assert strangers == [], f"entries of others shown: {strangers}"


def test_an_admin_sees_the_cancel_as_admin(
    page: Any, cluster: Cluster, history: dict[str, int]
) -> None:
    page.goto(cluster.url + "/queue.html")
    page.locator("#session").get_by_role("link", name="Audit log").click()
    page.wait_for_url(cluster.url + "/audit.html")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    expect(page.locator("#session .session-audit")).to_have_attribute("aria-current", "page")
    expect(page.get_by_label("User", exact=True)).to_be_visible()

    cancel = entry(page, "booking.cancel", f"booking {history['for_bob']}")
    expect(cancel).to_have_count(1)
    expect(cancel.locator(".actor-name")).to_have_text(USER)
    expect(cancel.locator(".badge-as-admin")).to_have_text("as admin")
    expect(cancel.locator("td.owner")).to_have_text("bob")
    expect(cancel.locator("td.action")).to_have_text("booking.cancel")
    # Local time on screen, the instant itself in the title.
    when = cancel.locator("td.when time")
    iso = when.get_attribute("title")
    assert iso and dt.datetime.fromisoformat(iso)
    assert when.get_attribute("datetime") == iso
    assert when.text_content() != iso
    # The admin's booking for bob is marked too; its own booking is not.
    made = entry(page, "booking.create", f"booking {history['for_bob']}")
    expect(made.locator(".badge-as-admin")).to_have_count(1)
    own = entry(page, "booking.create", f"booking {history['own']}")
    expect(own.locator("td.owner")).to_have_text(USER)
    expect(own.locator(".badge-as-admin")).to_have_count(0)
    # bob's entries are there, and the hostile token name is text.
    expect(entry(page, "booking.create", f"booking {history['by_bob']}")).to_have_count(1)
    token = page.locator('#audit tbody tr[data-action="token.create"]', has_text="bob")
    expect(token.locator("td.detail")).to_have_text(PWN)
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    total = cluster.api("GET", "/api/v1/audit?limit=1").json()["total"]
    expect(page.locator("#summary")).to_have_text(f"{total} entries")


def test_the_user_filter_narrows_to_bob(
    page: Any, cluster: Cluster, history: dict[str, int]
) -> None:
    page.goto(cluster.url + "/audit.html")
    expect(entry(page, "booking.create", f"booking {history['own']}")).to_have_count(1)
    page.get_by_label("User", exact=True).fill("bob")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#summary")).to_contain_text("for bob")
    assert "user=bob" in page.url
    expected = cluster.api("GET", "/api/v1/audit?user=bob").json()
    expect(rows(page)).to_have_count(len(expected["entries"]))
    entries = shown(page)
    assert_only(entries, "bob")
    assert {"actor": USER, "action": "booking.cancel", "target": f"booking {history['for_bob']}",
            "owner": "bob", "badge": "as admin"} in entries  # fmt: skip
    expect(entry(page, "booking.create", f"booking {history['own']}")).to_have_count(0)
    # The filter is in the address: a reload keeps it; "Everyone" drops it.
    page.reload()
    expect(page.get_by_label("User", exact=True)).to_have_value("bob")
    expect(rows(page)).to_have_count(len(expected["entries"]))
    page.get_by_role("button", name="Everyone").click()
    expect(entry(page, "booking.create", f"booking {history['own']}")).to_have_count(1)
    assert "user=" not in page.url


def test_bob_sees_only_his_own_activity(
    page: Any, cluster: Cluster, history: dict[str, int]
) -> None:
    sign_in(page, cluster, "bob", BOB_PASSWORD)
    page.goto(cluster.url + "/queue.html")
    page.locator("#session").get_by_role("link", name="My activity").click()
    expect(page.get_by_role("heading", name="My activity")).to_be_visible()
    expect(page.locator("#session .session-user")).to_have_text("bob")
    expect(page.locator("#audit-filter")).to_be_hidden()
    cancel = entry(page, "booking.cancel", f"booking {history['for_bob']}")
    expect(cancel.locator(".badge-as-admin")).to_have_text("as admin")
    expect(entry(page, "booking.create", f"booking {history['by_bob']}")).to_have_count(1)
    entries = shown(page)
    assert_only(entries, "bob")
    assert not any(e["target"] == f"booking {history['own']}" for e in entries)
    # A user filter in the address is not his to use: the same entries.
    page.goto(cluster.url + f"/audit.html?user={USER}")
    expect(rows(page)).to_have_count(len(entries))
    assert_only(shown(page), "bob")


def test_paging_newer_and_older(page: Any, cluster: Cluster, history: dict[str, int]) -> None:
    """Enough entries for two pages: root books (and so audits) one-hour slots."""
    total = cluster.api("GET", "/api/v1/audit?limit=1").json()["total"]
    for hour in range(max(0, 105 - total)):
        made = cluster.api("POST", "/api/v1/bookings", json=booking_body(0, 10, hour))
        assert made.status_code == 201, made.text
    total = cluster.api("GET", "/api/v1/audit?limit=1").json()["total"]
    assert total > 100
    page.goto(cluster.url + "/audit.html")
    expect(rows(page)).to_have_count(100)
    newer, older = (page.get_by_role("button", name=n) for n in ("← Newer", "Older →"))
    expect(newer).to_be_disabled()
    expect(page.locator("#audit-range")).to_have_text(f"1–100 of {total}")
    first = rows(page).first.get_attribute("data-entry")
    older.click()
    expect(page.locator("#audit-range")).to_have_text(f"101–{total} of {total}")
    expect(rows(page)).to_have_count(total - 100)
    expect(older).to_be_disabled()
    expect(newer).to_be_focused()  # the used button went disabled: focus moved, not lost
    assert "offset=100" in page.url
    oldest = cluster.api("GET", "/api/v1/audit?limit=1&offset=100").json()["entries"][0]
    expect(rows(page).first).to_have_attribute("data-entry", str(oldest["id"]))
    newer.click()
    expect(rows(page).first).to_have_attribute("data-entry", str(first))
    page.go_back()
    expect(page.locator("#audit-range")).to_have_text(f"101–{total} of {total}")


def test_an_anonymous_visitor_is_asked_to_sign_in(anonymous_page: Any, cluster: Cluster) -> None:
    anonymous_page.goto(cluster.url + "/audit.html")
    problem = anonymous_page.locator("#audit-problem")
    expect(problem).to_contain_text("Sign in to see the audit log")
    link = problem.get_by_role("link", name="Sign in")
    assert link.get_attribute("href") == "login.html?next=%2Faudit.html"
    expect(anonymous_page.locator("#audit-section")).to_be_hidden()
    expect(anonymous_page.locator("#audit-filter")).to_be_hidden()
    link.click()
    anonymous_page.wait_for_url("**/login.html?next=%2Faudit.html")


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "unauthenticated", "You are not signed in"),
        (403, "forbidden", "Your account may not read this audit log: no audit for you"),
        (500, "internal", "Could not load the audit log: no audit for you"),
    ],
)
def test_errors_are_explained(
    page: Any, cluster: Cluster, history: dict[str, int], status: int, code: str, expected: str
) -> None:
    body = json.dumps({"error": "no audit for you", "status": status, "code": code})
    page.route("**/api/v1/audit?*", lambda route: route.fulfill(
        status=status, content_type="application/json", body=body))  # fmt: skip
    page.goto(cluster.url + "/audit.html")
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text(expected)
    expect(page.locator("#audit-section")).to_be_hidden()
    if status == 401:
        expect(problem.get_by_role("link", name="Sign in")).to_be_visible()
    if status == 500:  # a retry that works shows the table
        page.unroute("**/api/v1/audit?*")
        problem.get_by_role("button", name="Try again").click()
        expect(rows(page).first).to_be_visible()
        expect(problem).to_be_hidden()


def test_the_empty_state(page: Any, cluster: Cluster, history: dict[str, int]) -> None:
    page.goto(cluster.url + "/audit.html?user=nobody-at-all")
    expect(page.locator("#audit-empty")).to_have_text("No entries for nobody-at-all.")
    expect(page.locator("#audit-section")).to_be_hidden()
    expect(page.locator("#audit-pages")).to_be_hidden()
    expect(page.locator("#summary")).to_have_text("No entries")


@pytest.mark.parametrize("who", ["root", "bob"])
def test_phone_width(phone: Any, cluster: Cluster, history: dict[str, int], who: str) -> None:
    if who == "bob":
        sign_in(phone, cluster, "bob", BOB_PASSWORD)
    phone.goto(cluster.url + "/audit.html")
    expect(rows(phone).first).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    wrap = phone.locator(".audit-wrap")
    box = wrap.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert wrap.evaluate("(e) => e.scrollWidth > e.clientWidth"), "the table fits: no test"
    if who == "root":
        field = phone.get_by_label("User", exact=True)
        field_box = field.bounding_box()
        assert field_box and field_box["x"] + field_box["width"] <= PHONE["width"]
        assert field_box["height"] >= 36
