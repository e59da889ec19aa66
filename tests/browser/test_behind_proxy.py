"""The web UI, the API and the API docs behind a reverse proxy, under a path prefix
(issue #16 item 7, ADR 0019).

A real ``procplan server --demo --root-path /procplan`` and, in this test, a small reverse
proxy that does what nginx's ``location /procplan/ { proxy_pass http://127.0.0.1:PORT/; }``
does: it strips the prefix, keeps the Host header and says whom it relays for
(``X-Forwarded-For``), so the server takes the browser for nobody until it signs in. Chromium
talks to the proxy only; every request the pages make must stay under ``/procplan/`` (a
request that escapes the prefix would hit another site behind the same host name).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import expect

from procplan.client.procplan_client import ProcPlanClient
from procplan.testing import ServerProcess, free_port, wait_until

PREFIX = "/procplan"
NODE = "node-a"  # the demo's first node: 4 GPUs
USER_NAME = "proxied"
PASSWORD = "a passphrase behind the proxy"
_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade",
                  b"proxy-connection", b"te", b"trailer"})  # fmt: skip


class PrefixProxy:
    """An ASGI reverse proxy: ``/procplan/x`` → ``upstream/x``; ``/procplan`` → a redirect
    to ``/procplan/``; anything else 404 (and remembered in ``escaped``)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.escaped: list[str] = []
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["raw_path"].decode("latin-1") if scope.get("raw_path") else scope["path"]
        if path == PREFIX:
            await self._reply(send, 301, [(b"location", f"{PREFIX}/".encode())])
            return
        if not path.startswith(PREFIX + "/"):
            self.escaped.append(path)
            await self._reply(send, 404, [(b"content-type", b"text/plain")], b"not proxied")
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        target = self.upstream + path[len(PREFIX) :] + (f"?{query}" if query else "")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        client_host = (scope.get("client") or ("127.0.0.1", 0))[0]
        headers += [(b"x-forwarded-for", client_host.encode()), (b"x-forwarded-proto", b"http"),
                    (b"x-forwarded-prefix", PREFIX.encode())]  # fmt: skip
        self._client = self._client or httpx.AsyncClient(timeout=60)
        request = self._client.build_request(scope["method"], target, headers=headers, content=body)
        upstream = await self._client.send(request, stream=True)
        try:
            kept = [(k, v) for k, v in upstream.headers.raw if k.lower() not in _HOP]
            await send({"type": "http.response.start", "status": upstream.status_code,
                        "headers": kept})  # fmt: skip
            async for chunk in upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await upstream.aclose()

    @staticmethod
    async def _reply(send: Any, status: int, headers: list[Any], body: bytes = b"") -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Served:
    def __init__(self, server: ServerProcess, proxy: PrefixProxy, port: int) -> None:
        self.server = server
        self.proxy = proxy
        self.origin = f"http://127.0.0.1:{port}"
        self.url = self.origin + PREFIX  # the public address of ProcPlan


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp: Path = tmp_path_factory.mktemp("proxy")
    args = ["--database", str(tmp / "proxy.db"), "--demo", "--root-path", PREFIX]
    env = {"PROCPLAN_LOCAL_NODE": "proxy-host"}
    with ServerProcess(args, env=env, log_file=tmp / "server.log") as server:
        made = httpx.post(f"{server.url}/api/v1/users", timeout=10,
                          json={"name": USER_NAME, "password": PASSWORD})  # fmt: skip
        assert made.status_code == 201, made.text
        proxy = PrefixProxy(server.url)
        port = free_port()
        config = uvicorn.Config(proxy, host="127.0.0.1", port=port, lifespan="off",
                                log_level="warning", access_log=False)  # fmt: skip
        runner = uvicorn.Server(config)
        thread = threading.Thread(target=lambda: asyncio.run(runner.serve()), daemon=True)
        thread.start()
        wait_until(lambda: runner.started, timeout=10.0, step=0.05)
        try:
            yield Served(server, proxy, port)
        finally:
            runner.should_exit = True
            thread.join(timeout=10)


def record_requests(page: Any) -> list[str]:
    """Every URL the page asks for, except those the browser itself refused to fetch (the
    docs pages' Content-Security-Policy blocks what their scripts try elsewhere)."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))

    def refused(request: Any) -> None:
        if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP"):
            seen.remove(request.url)

    page.on("requestfailed", refused)
    return seen


def outside_the_prefix(served: Served, seen: list[str]) -> list[str]:
    """Requests that left the prefix (``data:`` and this page's own ``blob:`` objects are no
    requests to anyone)."""
    local = ("data:", f"blob:{served.origin}/")
    return [url for url in seen if not url.startswith((served.url + "/", *local))]


def test_sign_in_and_book_through_the_proxy(page: Any, served: Served) -> None:
    seen = record_requests(page)
    page.goto(served.url + "/")
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    expect(page.locator("#session")).to_contain_text("Not signed in")  # relayed: nobody

    # Sign in (a POST through the proxy; the cookie is scoped to the prefix).
    page.locator("#session").get_by_role("link", name="Sign in").click()
    page.wait_for_url(lambda url: url.startswith(served.url + "/login.html"))
    page.get_by_label("User name").fill(USER_NAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.startswith(served.url + "/#") or url == served.url + "/")
    expect(page.locator("#session")).to_contain_text(f"Signed in as {USER_NAME}")
    cookies = page.context.cookies()
    assert [c["path"] for c in cookies] == [PREFIX], cookies

    # Book GPU 0 of node-a on next week's Tuesday with the keyboard.
    expect(page.locator(f'tbody[data-node="{NODE}"] tr.gpu-row')).to_have_count(4)
    label = page.locator("#week-label").text_content()
    page.click("#week-next")
    expect(page.locator("#week-label")).not_to_have_text(label or "")
    # The label changes at once, the grid when next week's calendar has arrived: wait for it,
    # or the keys would select a day of this week (in the past: refused).
    today = datetime.now(UTC).date()
    next_monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    first_head = page.locator("#grid thead th.day-head").first
    expect(first_head).to_contain_text(f"{next_monday.day} {next_monday:%b}")
    page.locator(f'tr.gpu-row[data-gpu="{NODE}-gpu0"] td.track').focus()
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    with page.expect_response(lambda r: r.url == f"{served.url}/api/v1/bookings") as sent:
        page.keyboard.press("Enter")
        form = page.locator("#booking-dialog")
        form.locator("input[name=label]").fill("booked through the proxy")
        form.locator("input[name=label]").press("Enter")
    assert sent.value.status == 201, sent.value.text()
    bar = page.locator(f'tr.gpu-row[data-gpu="{NODE}-gpu0"] td.track button.bar')
    expect(bar).to_have_text("booked through the proxy")
    made = httpx.get(f"{served.server.url}/api/v1/bookings/{bar.get_attribute('data-booking')}")
    assert made.json()["user"] == USER_NAME

    # The board renders the cluster too.
    page.goto(served.url + "/board.html")
    node = page.locator(f'section.node-card[data-node="{NODE}"]')
    expect(node.locator("h3")).to_have_text("Demo Node A")
    expect(node.locator("tbody tr")).to_have_count(4)
    assert outside_the_prefix(served, seen) == []
    assert served.proxy.escaped == []


def test_the_api_docs_work_offline_under_the_prefix(page: Any, served: Served) -> None:
    """Swagger UI and ReDoc render from this server's files alone. ReDoc's sidebar asks
    cdn.redoc.ly for a logo: the docs pages' Content-Security-Policy refuses it, and refuses
    nothing else (no script, style or call the pages need)."""
    seen = record_requests(page)
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(served.url + "/board.html")
    page.get_by_role("link", name="API docs").click()
    page.wait_for_url(served.url + "/docs")
    expect(page.locator(".swagger-ui .information-container")).to_contain_text("ProcPlan")
    expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible()
    # "Try it out" goes to the prefixed server the OpenAPI document names.
    expect(page.locator(".swagger-ui .servers select")).to_have_value(PREFIX)

    page.goto(served.url + "/redoc")
    expect(page.locator("h1").first).to_contain_text("ProcPlan")
    expect(page.get_by_text("/api/v1/nodes").first).to_be_attached()
    assert outside_the_prefix(served, seen) == []
    assert all("https://cdn.redoc.ly/redoc/logo-mini.svg" in text for text in refused), refused
    assert served.proxy.escaped == []


def test_the_client_takes_a_url_with_the_prefix(served: Served) -> None:
    with ProcPlanClient(served.url) as client:
        assert NODE in {node["id"] for node in client.nodes.list()["nodes"]}
    assert served.proxy.escaped == []
