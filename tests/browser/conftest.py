"""Browser suite: real Chromium (Debian's ``/usr/bin/chromium``, never a Playwright download)
driven by Playwright's sync API against a real ``procplan server`` and a real ``procplan agent``
on 4 fake GPUs. A second node, ``lab-box``, is an agent simulated over HTTP by the test: it
reports a process of user ``mallory`` that holds no job and no booking (``unbooked_use``).

Identity (issue #12): the browser and this test process run on the server's own host and reach
it over loopback TCP, so the server knows them as their Unix user ``USER``, an admin (root and
the server's own user are; the server runs as this test's user, root in CI).
``sign_in`` gives a page's context the session cookie of another user; ``anonymous_page`` is a
browser the server cannot place (its requests arrive as if relayed by a proxy).

Missing Chromium or Playwright skips with a reason (fails under ``PROCPLAN_REQUIRE_ALL=1``).
``PROCPLAN_SCREENSHOTS=1`` makes the screenshot tests write ``docs/img/board.png`` and
``docs/img/queue.png``.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import missing_dependency

from procplan.testing import AgentProcess, ServerProcess, wait_until

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-token"
NODE = "gpu-node"
FOREIGN_NODE = "lab-box"
USER = getpass.getuser()  # the agent runs batch jobs as their user: this one
XSS = "<img src=x onerror=alert(1)>"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
until = functools.partial(wait_until, timeout=40.0, step=0.1)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the whole session: Playwright's sync API keeps an
    asyncio loop running in this thread while it is open, and later tests that call
    ``asyncio.run`` (the waiter, the Textual pilot) would fail."""
    if not os.access(CHROMIUM, os.X_OK):
        missing_dependency(f"{CHROMIUM} is missing (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing_dependency("the playwright package is missing (pip install -e '.[test]')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


class Dialogs:
    """Every dialog a page opens; confirm() is accepted only while ``accept_confirm`` is set."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.accept_confirm = False

    def handle(self, dialog: Any) -> None:
        self.seen.append((dialog.type, dialog.message))
        if dialog.type == "confirm" and self.accept_confirm:
            dialog.accept()
        else:
            dialog.dismiss()

    def alerts(self) -> list[tuple[str, str]]:
        return [d for d in self.seen if d[0] != "confirm"]


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


def checked_page(browser: Any, dialogs: Dialogs, **context: Any) -> Iterator[Any]:
    """A page in a fresh context (``context``: Playwright's new_context options), signed in
    as nobody in particular: the server knows it as ``USER`` by its connection. After the
    test, no page may have raised an alert or a script error."""
    made = browser.new_context(**context)
    opened = made.new_page()
    errors: list[str] = []
    opened.on("dialog", dialogs.handle)
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    made.close()
    assert dialogs.alerts() == [], f"the page opened dialogs: {dialogs.alerts()}"
    assert errors == [], f"script errors: {errors}"


@pytest.fixture
def page(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    """A fresh 1280 px wide page (see ``checked_page``)."""
    yield from checked_page(browser, dialogs, viewport={"width": 1280, "height": 900})


@pytest.fixture
def anonymous_page(browser: Any, dialogs: Dialogs) -> Iterator[Any]:
    """Like ``page``, but nobody: every request says it was relayed for a remote address, so
    the server does not take the loopback connection's Unix user for the visitor's."""
    yield from checked_page(
        browser,
        dialogs,
        viewport={"width": 1280, "height": 900},
        extra_http_headers={"X-Forwarded-For": "203.0.113.7"},
    )


def sign_in(page: Any, cluster: Cluster, user: str, password: str) -> None:
    """Give ``page``'s browser context ``user``'s session cookie (as the sign-in page would)."""
    reply = page.request.post(
        cluster.url + "/api/v1/session", data={"user": user, "password": password}
    )
    assert reply.status == 200, reply.text()
    assert reply.json()["user"] == user


# ---- the cluster ---------------------------------------------------------------------------


class Cluster:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request from this process: the server knows it as ``USER`` (an admin, see the
        module docstring); ``headers={"X-ProcPlan-User": name}`` acts for ``name``."""
        return httpx.request(method, self.url + path, timeout=10, **kwargs)

    def add_user(self, name: str, password: str | None = None, role: str = "user") -> None:
        """Create ``name`` (once per cluster; a second call only checks it exists)."""
        body: dict[str, Any] = {"name": name, "role": role}
        if password is not None:
            body["password"] = password
        reply = self.api("POST", "/api/v1/users", json=body)
        assert reply.status_code in (201, 409), reply.text

    def submit(self, workdir: Path, *command: str, **fields: Any) -> str:
        body = {"command": list(command), "workdir": str(workdir), "node_id": NODE, **fields}
        reply = self.api("POST", "/api/v1/jobs", json=body)
        assert reply.status_code == 201, reply.text
        return str(reply.json()["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        reply = self.api("GET", f"/api/v1/jobs/{job_id}")
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    def node(self, node_id: str) -> dict[str, Any]:
        reply = self.api("GET", f"/api/v1/nodes/{node_id}")
        return reply.json() if reply.status_code == 200 else {"state": "missing"}

    def cancel_all(self) -> None:
        active = self.api("GET", "/api/v1/jobs?state=active&limit=1000").json()["jobs"]
        for job in active:
            self.api("DELETE", f"/api/v1/jobs/{job['id']}")
        ids = [job["id"] for job in active]
        until(lambda: all(self.job(i)["state"] not in ("pending", "running") for i in ids))


def queue_behind_a_full_node(cluster: Cluster, workdir: Path) -> dict[str, str]:
    """``gpu-node`` filled by a 4-GPU ``sleep 60``; a 1-GPU job waits for it ("Resources").
    Returns the job ids as ``running`` and ``pending``."""
    hog = cluster.submit(workdir, "sleep", "60", gpu_count=4, name="fill-the-node")
    until(lambda: cluster.job(hog)["state"] == "running")
    waiting = cluster.submit(workdir, "sleep", "1", gpu_count=1, name="needs-one-gpu")
    until(lambda: cluster.job(waiting)["reason"] == "Resources")
    return {"running": hog, "pending": waiting}


def simulate_foreign_agent(cluster: Cluster) -> None:
    """``lab-box``: 2 GPUs, registered for a long interval (it stays online for minutes after
    one heartbeat); GPU 0 runs mallory's process (command: an HTML injection attempt), GPU 1 is
    booked by bob and idle."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    devices = [
        {"index": i, "uuid": f"GPU-LAB-{i}", "name": "NVIDIA A100-SXM4-80GB", "memory_mb": 81920}
        for i in range(2)
    ]
    registration = {"node_id": FOREIGN_NODE, "hostname": "lab-box.example", "address": "10.0.0.9",
                    "agent_version": "0.1.0", "interval_s": 300.0, "os_user": "root", "pid": 4242,
                    "reader": "fake", "devices": devices}  # fmt: skip
    reply = cluster.api("POST", "/api/v1/agents/register", json=registration, headers=auth)
    assert reply.status_code == 200, reply.text
    session = reply.json()["session"]
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    booking = {"node_id": FOREIGN_NODE, "gpu_ids": [f"{FOREIGN_NODE}-gpu1"], "user": "bob",
               "label": "bob's eval run", "start": now.isoformat(),
               "end": (now + dt.timedelta(hours=3)).isoformat()}  # fmt: skip
    reply = cluster.api(
        "POST", "/api/v1/bookings", json=booking, headers={"X-ProcPlan-User": "bob"}
    )
    assert reply.status_code == 201, reply.text
    readings = [
        {"index": 0, "uuid": "GPU-LAB-0", "utilization_pct": 87.0, "memory_used_mb": 41234,
         "memory_total_mb": 81920, "temperature_c": 71.0, "power_w": 312.0, "mig": False},
        {"index": 1, "uuid": "GPU-LAB-1", "utilization_pct": 0.0, "memory_used_mb": 0,
         "memory_total_mb": 81920, "temperature_c": 34.0, "power_w": 58.0, "mig": False},
    ]  # fmt: skip
    process = {"gpu_uuid": "GPU-LAB-0", "pid": 31337, "used_memory_mb": 40960, "user": "mallory",
               "command": XSS, "job_id": None, "ancestors": [1]}  # fmt: skip
    heartbeat = {"session": session, "readings": readings, "processes": [process], "jobs": [],
                 "read_error": None}  # fmt: skip
    reply = cluster.api(
        "POST", f"/api/v1/agents/{FOREIGN_NODE}/heartbeat", json=heartbeat, headers=auth
    )
    assert reply.status_code == 200, reply.text


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A real server, a real agent (``gpu-node``, 4 fake GPUs) and the simulated ``lab-box``."""
    tmp = tmp_path_factory.mktemp("browser")
    # The batch jobs run as this test's user: root in CI, which server and agent refuse unless
    # told to permit it.
    as_root = os.geteuid() == 0
    env = {"PROCPLAN_AGENT_TOKEN": TOKEN, "PROCPLAN_LOCAL_AGENT": "off"}
    if as_root:
        env["PROCPLAN_ALLOW_ROOT_JOBS"] = "true"
    server = ServerProcess(["--database", str(tmp / "board.db")], env=env).start()
    root_jobs = ("--allow-root-jobs",) if as_root else ()
    agent = AgentProcess(server.url, TOKEN, NODE, tmp / "state", tmp / "agent.log", extra=root_jobs)
    agent.start()
    built = Cluster(server.url)
    try:
        until(lambda: built.node(NODE)["state"] == "online")
        simulate_foreign_agent(built)
        yield built
        built.cancel_all()
    finally:
        agent.stop()
        server.stop()


def screenshot(page: Any, name: str, full_page: bool = True) -> None:
    """Write ``docs/img/<name>`` when ``PROCPLAN_SCREENSHOTS=1`` (kept out of ordinary runs so
    that the tracked images change only on purpose)."""
    if os.environ.get("PROCPLAN_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / name), full_page=full_page)


def instant(text: str) -> dt.datetime:
    """An ISO instant of the API's answers as a datetime."""
    return dt.datetime.fromisoformat(text)
