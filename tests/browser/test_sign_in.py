"""Identity in the web UI (issue #12), in Chromium against a real server.

- The sign-in page: a non-admin user created through the API signs in with a password (a wrong
  one first: a clear error), sees "Signed in as bob", books as bob, gets change controls on
  their own booking and none on someone else's, and signs out (the session is revoked).
- An admin's one-time login link signs in; its secret leaves the address bar before it is
  sent, and a second use is refused with a clear message.
- A visitor the server cannot place sees the calendar and the queue read-only, and a prompt to
  sign in when they try to book.
- An admin (this host's own user) sees the controls on everyone's bookings and jobs, marked
  "as admin".
- A cross-site attack: a page on another origin (a second HTTP server on another port) posts
  text/plain forms and no-cors fetches with JSON bodies to the server's booking and job routes,
  from a browser that the server would otherwise know as an admin (its host's user) or that
  holds a session cookie; nothing is created, changed or run.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from tests.browser.conftest import NODE, USER, Cluster, Dialogs, sign_in, until
from tests.browser.test_planner import at, bar, book, booking, focus_day, open_planner, track

pytestmark = pytest.mark.browser

try:
    from playwright.sync_api import expect
except ImportError:  # the ``browser`` fixture skips (or fails in CI) with the reason
    expect = None

BOB_PASSWORD = "bob's long passphrase"
COOKIE = "procplan_session"


@pytest.fixture(scope="module")
def people(cluster: Cluster) -> dict[str, str]:
    """bob (a user with a password) and carol (a user without one: she signs in by link)."""
    cluster.add_user("bob", password=BOB_PASSWORD)
    cluster.add_user("carol")
    return {"bob": BOB_PASSWORD}


def session_user(page: Any) -> Any:
    return page.locator("#session .session-user")


def session_cookie(page: Any) -> str | None:
    found = [c["value"] for c in page.context.cookies() if c["name"] == COOKIE]
    return found[0] if found else None


def me_with_cookie(cluster: Cluster, secret: str) -> dict[str, Any]:
    """``/api/v1/me`` for a request carrying ``secret`` as its session cookie (from this host:
    without a valid cookie the server knows it as ``USER``)."""
    reply = cluster.api("GET", "/api/v1/me", headers={"Cookie": f"{COOKIE}={secret}"})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


# ---- signing in and out --------------------------------------------------------------------


def test_sign_in_with_a_password_book_and_sign_out(
    page: Any, cluster: Cluster, people: dict[str, str]
) -> None:
    theirs = book(cluster, [f"{NODE}-gpu1"], at(3, 2, 8), at(3, 2, 16), user="carol",
                  label="carol's run")  # fmt: skip
    # On the server's own host the browser is its Unix user, an admin, until it signs in.
    page.goto(cluster.url + "/")
    expect(session_user(page)).to_have_text(USER)
    expect(page.locator("#session .role-badge")).to_have_text("admin")
    expect(page.locator("#session .admin-notice")).to_contain_text("Acting as admin")
    page.locator("#session").get_by_role("link", name="Switch user").click()
    page.wait_for_url(lambda url: url.startswith(cluster.url + "/login.html?next="))

    # A wrong password: a clear error, and still signed out.
    user = page.get_by_label("User name")
    password = page.get_by_label("Password")
    user.fill("bob")
    password.fill("not bob's password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    expect(password).to_be_focused()
    assert session_cookie(page) is None

    password.fill(BOB_PASSWORD)
    with page.expect_request("**/api/v1/session") as sent:
        password.press("Enter")
    assert sent.value.post_data_json == {"user": "bob", "password": BOB_PASSWORD}
    assert sent.value.headers["content-type"] == "application/json"
    page.wait_for_url(lambda url: url.startswith(cluster.url + "/#view=week"))  # the planner
    expect(page.locator("#session")).to_contain_text("Signed in as bob")
    expect(page.locator("#session .role-badge")).to_have_count(0)
    expect(page.locator("#session .admin-notice")).to_have_count(0)
    expect(page.get_by_label("Your name")).to_have_count(0)  # the typed name is gone

    # Book as bob (the request names nobody: the server knows bob by the cookie).
    open_planner(page, cluster, weeks_ahead=3)
    focus_day(page, 0, 1)
    with page.expect_request("**/api/v1/bookings") as sent:
        page.keyboard.press("Enter")
        form = page.locator("#booking-dialog")
        form.locator("input[name=label]").fill("bob's run")
        form.locator("input[name=label]").press("Enter")
    assert "x-procplan-user" not in {name.lower() for name in sent.value.headers}
    mine = track(page, 0).locator("button.bar")
    expect(mine).to_have_text("bob's run")
    made = booking(cluster, int(mine.get_attribute("data-booking") or 0))
    assert made["user"] == "bob"
    expect(mine).to_have_class("bar p-medium st-active mine")

    # bob's booking offers its controls, carol's none (and says who may change it).
    panel = page.locator("#details")
    mine.click()
    expect(panel.get_by_role("button", name="Cancel booking…")).to_be_visible()
    expect(panel.get_by_role("button", name="Extend +1 h")).to_be_visible()
    expect(panel.locator(".as-admin:visible")).to_have_count(0)
    expect(page.locator("#details-admin")).to_be_hidden()
    bar(page, theirs["id"]).click()
    expect(page.locator("#details-title")).to_have_text("carol's run")
    expect(panel.get_by_role("button")).to_have_count(1)  # only "Close details"
    expect(page.locator("#details-readonly")).to_have_text(
        "Only carol or an admin can change this booking."
    )
    # bob cancels his own booking.
    mine.click()
    panel.get_by_role("button", name="Cancel booking…").click()
    panel.get_by_role("button", name="Yes, cancel it").click()
    expect(page.locator(".toast-success", has_text="cancelled")).to_contain_text(f"#{made['id']}")
    assert booking(cluster, made["id"])["status"] == "cancelled"
    assert booking(cluster, theirs["id"])["status"] == "active"

    # Sign out: the cookie is gone and revoked; the page is the host's user again.
    secret = session_cookie(page)
    assert secret is not None and me_with_cookie(cluster, secret)["user"] == "bob"
    page.locator("#session").get_by_role("button", name="Sign out").click()
    expect(session_user(page)).to_have_text(USER)
    expect(page.locator("#session .session-via")).to_have_text("(this machine)")
    assert session_cookie(page) is None
    # The old secret proves nothing, and never falls back to the machine's user: 401.
    stale = cluster.api("GET", "/api/v1/me", headers={"Cookie": f"{COOKIE}={secret}"})
    assert stale.status_code == 401 and stale.json()["code"] == "session_expired"


def test_a_login_link_signs_in_once(page: Any, cluster: Cluster, people: dict[str, str]) -> None:
    reply = cluster.api("POST", "/api/v1/users/carol/login-link")
    assert reply.status_code == 200, reply.text
    url = reply.json()["url"]
    assert url.startswith(cluster.url + "/login.html#link=")
    secret = url.split("#link=", 1)[1]

    held: list[Any] = []
    page.route("**/api/v1/session", lambda route: held.append(route))
    with page.expect_request("**/api/v1/session") as sent:
        page.goto(url)
    # While the sign-in is under way, the secret is already out of the address bar.
    assert sent.value.post_data_json == {"link": secret}
    assert page.url == cluster.url + "/login.html"
    assert page.evaluate("location.hash") == ""
    expect(page.locator("#login-status")).to_have_text("Signing in with your link…")
    held[0].continue_()
    page.unroute("**/api/v1/session")
    page.wait_for_url(cluster.url + "/")
    expect(page.locator("#session")).to_contain_text("Signed in as carol")
    expect(page.locator("#session").get_by_role("button", name="Sign out")).to_be_visible()
    assert session_cookie(page) is not None

    # The link is spent: a second use says so, and carol stays signed in.
    page.goto(url)
    expect(page.get_by_role("alert")).to_contain_text("already used or it has expired")
    assert page.url == cluster.url + "/login.html"
    expect(session_user(page)).to_have_text("carol")


def test_sign_in_goes_back_only_to_this_site(
    page: Any, cluster: Cluster, people: dict[str, str]
) -> None:
    """``?next=`` naming another site is ignored: the page goes to the planner."""
    reply = cluster.api("POST", "/api/v1/users/carol/login-link")
    assert reply.status_code == 200, reply.text
    secret = reply.json()["url"].split("#link=", 1)[1]
    page.goto(f"{cluster.url}/login.html?next=//evil.example/steal#link={secret}")
    page.wait_for_url(cluster.url + "/")
    expect(session_user(page)).to_have_text("carol")


def test_anonymous_visitors_read_only_and_are_asked_to_sign_in(
    anonymous_page: Any, cluster: Cluster, people: dict[str, str]
) -> None:
    page = anonymous_page
    theirs = book(cluster, [f"{NODE}-gpu2"], at(3, 3, 8), at(3, 3, 16), user="carol",
                  label="visible to all")  # fmt: skip
    open_planner(page, cluster, weeks_ahead=3)
    session = page.locator("#session")
    expect(session).to_contain_text("Not signed in")
    expect(page.locator("#read-only")).to_be_visible()
    expect(page.get_by_role("button", name="My bookings")).to_be_hidden()
    # The calendar shows; a booking's details offer no controls.
    bar(page, theirs["id"]).click()
    expect(page.locator("#details-title")).to_have_text("visible to all")
    expect(page.locator("#details").get_by_role("button")).to_have_count(1)
    page.keyboard.press("Escape")
    # Trying to book asks to sign in instead of opening the form.
    focus_day(page, 3, 1)
    page.keyboard.press("Enter")
    prompt = page.locator(".toast-error")
    expect(prompt).to_contain_text("Sign in to book GPUs")
    expect(prompt.get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.locator("#booking-dialog")).to_be_hidden()
    # The queue is read-only too.
    page.goto(cluster.url + "/queue.html")
    expect(page.locator("#summary")).to_contain_text("sign in to cancel your jobs")
    expect(page.locator("main").get_by_role("button")).to_have_count(0)
    # Signing in from there comes back to the queue, as bob.
    session.get_by_role("link", name="Sign in").click()
    page.wait_for_url(cluster.url + "/login.html?next=%2Fqueue.html")
    page.get_by_label("User name").fill("bob")
    page.get_by_label("Password").fill(BOB_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(cluster.url + "/queue.html")
    expect(session).to_contain_text("Signed in as bob")
    expect(page.locator("#summary")).to_contain_text("you are bob")


def test_the_sign_in_page_explains_an_incomplete_link(page: Any, cluster: Cluster) -> None:
    page.goto(cluster.url + "/login.html#link=")
    expect(page.get_by_role("alert")).to_contain_text("incomplete")
    assert page.evaluate("location.hash") == ""
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Enter your user name.")
    expect(page.get_by_label("User name")).to_be_focused()


# ---- admins --------------------------------------------------------------------------------


def test_an_admin_changes_everyones_items_marked_as_admin(
    page: Any, cluster: Cluster, people: dict[str, str], dialogs: Dialogs
) -> None:
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    own = book(cluster, [f"{NODE}-gpu0"], now - dt.timedelta(minutes=5),
               now + dt.timedelta(hours=2), label="admin's own")  # fmt: skip
    bobs = book(cluster, [f"{NODE}-gpu3"], at(3, 4, 8), at(3, 4, 16), user="bob",
                label="bob's eval")  # fmt: skip
    # bob's job waits: gpu-node's GPU 0 is booked by someone else right now.
    reply = cluster.api(
        "POST", "/api/v1/jobs", headers={"X-ProcPlan-User": "bob"},
        json={"kind": "interactive", "gpu_count": 4, "node_id": NODE, "name": "bob-notebook"},
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    job_id = str(reply.json()["job_id"])

    open_planner(page, cluster, weeks_ahead=3)
    panel = page.locator("#details")
    bar(page, bobs["id"]).click()
    cancel = panel.get_by_role("button", name="Cancel booking… (as admin)")
    expect(cancel).to_be_visible()
    expect(page.locator("#details-admin")).to_have_text("As admin: this is bob’s booking.")
    cancel.click()
    panel.get_by_role("button", name="Yes, cancel it").click()
    expect(page.locator(".toast-success", has_text="cancelled")).to_contain_text(f"#{bobs['id']}")
    assert booking(cluster, bobs["id"])["status"] == "cancelled"
    # The admin's own booking: the same controls, unmarked.
    page.click("#week-today")
    bar(page, own["id"]).click()
    expect(page.locator("#details-title")).to_have_text("admin's own")
    expect(panel.get_by_role("button", name="Release now", exact=True)).to_be_visible()
    expect(page.locator("#details-admin")).to_be_hidden()

    page.goto(cluster.url + "/queue.html")
    row = page.locator(f'#pending tbody tr[data-job="{job_id}"]')
    expect(row.locator("td.user")).to_have_text("bob")
    button = row.get_by_role("button", name=f"Cancel job {job_id} (bob-notebook) of bob, as admin")
    expect(button).to_have_text("Cancel (as admin)")
    dialogs.accept_confirm = True
    button.click()
    expect(row).to_have_count(0)
    assert "of bob (as admin)" in dialogs.seen[-1][1]
    assert cluster.job(job_id)["state"] == "cancelled"
    cluster.api("POST", f"/api/v1/bookings/{own['id']}/release")


# ---- cross-site requests -------------------------------------------------------------------


class _Attacker(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, str]] = {}  # path -> HTML

    def do_GET(self) -> None:
        body = self.pages.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def attacker() -> Iterator[str]:
    """Another web site: an HTTP server on another port of this host (another origin, and for
    cookies the same site, so SameSite=Lax alone would not stop it)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _text_plain_form(target: str, frame: str, body: str, split: str) -> str:
    """A form that posts ``body`` as text/plain: the browser sends ``name=value``, so ``body``
    is cut at ``split`` (the ``=`` lands inside a JSON string)."""
    cut = body.index(split) + len(split)
    name, value = body[:cut], body[cut:]
    return (
        f'<form method="post" enctype="text/plain" action="{html.escape(target)}" '
        f'target="{frame}"><input type="hidden" name="{html.escape(name)}" '
        f'value="{html.escape(value)}"></form>'
    )


def attack_page(server: str, booking_body: str, job_body: str, victim_id: int) -> str:
    """Auto-submits three forms (two text/plain JSON bodies, one empty POST that would cancel
    the victim's booking) and sends two no-cors and one CORS fetch; sets the title to "done"
    when all have been answered or refused."""
    forms = [
        _text_plain_form(server + "/api/v1/bookings", "f0", booking_body, '"label":"pwned-form'),
        _text_plain_form(server + "/api/v1/jobs", "f1", job_body, "#"),
        f'<form method="post" action="{server}/api/v1/bookings/{victim_id}/cancel" '
        'target="f2"></form>',
    ]
    script = f"""
      const server = {json.dumps(server)};
      const booking = {json.dumps(booking_body)}.replace('pwned-form', 'pwned-fetch');
      const job = {json.dumps(job_body)};
      const post = (path, mode, body, headers = {{}}) => fetch(server + path,
        {{method: 'POST', mode, credentials: 'include', headers, body}});
      const frames = [...document.querySelectorAll('iframe')];
      const loaded = frames.map((f) => new Promise((done) => f.addEventListener('load', done)));
      document.querySelectorAll('form').forEach((form) => form.submit());
      const calls = [
        post('/api/v1/bookings', 'no-cors', booking),
        post('/api/v1/jobs', 'no-cors', job),
        post('/api/v1/bookings', 'cors', booking.replace('pwned-fetch', 'pwned-cors'),
             {{'Content-Type': 'application/json'}}),
      ].map((call) => call.then(() => 'answered', (err) => 'refused: ' + err));
      Promise.all([...loaded, ...calls]).then((results) => {{
        window.results = results.slice(frames.length);
        document.title = 'done';
      }});
    """
    frames = "".join(f'<iframe name="f{i}"></iframe>' for i in range(3))
    return (
        "<!doctype html><html><head><title>cute cats</title></head><body>"
        f"<h1>Cute cats</h1>{frames}{''.join(forms)}<script>{script}</script></body></html>"
    )


@pytest.mark.parametrize("victim", ["host user", "signed-in user"])
def test_a_page_on_another_origin_cannot_write(
    page: Any,
    cluster: Cluster,
    attacker: str,
    people: dict[str, str],
    tmp_path: Path,
    victim: str,
) -> None:
    """The browser runs on the server's host: without a cookie the server would take its
    requests for ``USER``'s (an admin); signed in, they carry bob's cookie. Either way the
    attacker's requests are refused (their Origin is another site's) and nothing changes."""
    if victim == "signed-in user":
        sign_in(page, cluster, "bob", BOB_PASSWORD)
    owner = "bob" if victim == "signed-in user" else USER
    target = book(cluster, [f"{NODE}-gpu2"], at(4, 1, 8), at(4, 1, 12), user=owner,
                  label=f"{victim}'s booking")  # fmt: skip
    marker = tmp_path / "pwned"
    start, end = at(4, 2, 8), at(4, 2, 12)
    booking_body = json.dumps(
        {"node_id": NODE, "gpu_ids": [f"{NODE}-gpu3"], "start": start.isoformat(),
         "end": end.isoformat(), "priority": "high", "label": "pwned-form"},
        separators=(",", ":"),
    )  # fmt: skip
    job_body = json.dumps(
        {"node_id": NODE, "gpu_count": 1, "name": "pwned-job", "workdir": str(tmp_path),
         "command": ["sh", "-c", f"touch {marker} #"]},
        separators=(",", ":"),
    )  # fmt: skip
    _Attacker.pages["/cats.html"] = attack_page(cluster.url, booking_body, job_body, target["id"])

    def everything() -> tuple[set[tuple[int, str, str]], set[str]]:
        """The bookings (id, status, end) and the job ids."""
        bookings = cluster.api("GET", "/api/v1/bookings?limit=1000").json()["bookings"]
        jobs = cluster.api("GET", "/api/v1/jobs?limit=1000").json()["jobs"]
        return {(b["id"], b["status"], b["end"]) for b in bookings}, {str(j["id"]) for j in jobs}

    before = everything()
    answers: list[Any] = []  # the server's answers to POSTs

    def seen(response: Any) -> None:
        if response.request.method == "POST" and response.url.startswith(cluster.url):
            answers.append(response)

    page.on("response", seen)
    page.goto(attacker + "/cats.html")
    assert page.evaluate("location.origin") == attacker != cluster.url  # really another origin
    page.wait_for_function("document.title === 'done'", timeout=20_000)
    results = page.evaluate("window.results")
    assert results[:2] == ["answered", "answered"]  # no-cors: sent, the answer is opaque
    assert results[2].startswith("refused")  # CORS: no preflight answer, never sent
    # Every attempt reached the server, which refused it as cross-site.
    posts = [(r.url, r.status) for r in answers]
    paths = sorted(url.removeprefix(cluster.url) for url, _ in posts)
    assert paths == sorted(["/api/v1/bookings", "/api/v1/bookings", "/api/v1/jobs",
                            "/api/v1/jobs", f"/api/v1/bookings/{target['id']}/cancel"])  # fmt: skip
    assert {status for _, status in posts} == {403}, posts
    if victim == "signed-in user":  # the same site (only the port differs): SameSite=Lax lets
        # the cookie through with the forms, so the Origin check is what stops them
        forms = [r.request for r in answers if r.request.resource_type == "document"]
        assert len(forms) == 3
        assert all(f"{COOKIE}=" in (form.header_value("cookie") or "") for form in forms)

    # Nothing was created, changed or run.
    assert everything() == before
    assert booking(cluster, target["id"])["status"] == "active"
    assert not marker.exists()

    # Control: the same bodies do work when sent as JSON by this user, so the refusals above
    # are the cross-site checks and not bad requests.
    as_owner = {"X-ProcPlan-User": owner}
    made = cluster.api("POST", "/api/v1/bookings", content=booking_body,
                       headers={**as_owner, "Content-Type": "application/json"})  # fmt: skip
    assert made.status_code == 201, made.text
    cluster.api("POST", f"/api/v1/bookings/{made.json()['booking']['id']}/cancel")
    cancelled = cluster.api("POST", f"/api/v1/bookings/{target['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    if owner == USER:  # bob has no Unix account to run batch jobs as
        job = cluster.api("POST", "/api/v1/jobs", content=job_body,
                          headers={"Content-Type": "application/json"})  # fmt: skip
        assert job.status_code == 201, job.text
        until(lambda: marker.exists())
