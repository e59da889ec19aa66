"""Notifications end to end (issue #14, ADR 0012): a real ``procplan server --demo``, a real
SMTP server (aiosmtpd) and a webhook receiver, both on loopback, and apprise in between.

The second test covers the events that time and agents cause: a booking that ends soon, a
queued job whose estimate moves by an hour, someone else's process on a booked GPU (a node
whose agent speaks the protocol from here), and that node going offline and coming back (to
the lab's cluster channel).

The test process is the server's admin (its own Unix user, by peer identity). It subscribes
a JSON webhook and an e-mail address to every event, then causes them: a batch job that
finishes, one that fails (its last log lines in the message), a job preempted and requeued
for an urgent one, a warning ahead of another user's booking on an open-ended job's GPUs,
and a booking of its own that starts soon. Then the webhook fails, a job ends, the server is
killed -9 with that note undelivered, the webhook recovers, the server restarts on the same
database: the note arrives, and nothing arrives twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from procplan.testing import ServerProcess, free_port, wait_until

pytestmark = pytest.mark.slow

ME = pwd.getpwuid(os.geteuid()).pw_name
NODE = "node-b"  # a demo node with 8 simulated GPUs
SETTINGS = {
    "PROCPLAN_NOTIFY_POLL_S": "0.2",
    "PROCPLAN_MIN_RUNTIME_S": "0",
    "PROCPLAN_PREEMPT_GRACE_S": "1",
    "PROCPLAN_BOOKING_WARNING_S": "3600",
    "PROCPLAN_ALLOW_ROOT_JOBS": "true",
}


class Hook:
    """A webhook receiver: the JSON bodies apprise posts, with when they came; ``failing``
    answers 500 (a receiver that is down)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.failing = False
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if hook.failing:
                    self.send_response(500)
                else:
                    hook.received.append((time.monotonic(), json.loads(body)))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def titles(self) -> list[str]:
        return [str(body.get("title")) for _, body in self.received]

    def body_of(self, title: str) -> str:
        return next(str(b.get("message")) for _, b in self.received if b.get("title") == title)


class Mailbox:
    """A real SMTP server (aiosmtpd) that keeps every message's subject."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.subjects: list[str] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                text = envelope.content.decode(errors="replace")
                subject = next((line[9:] for line in text.splitlines()
                                if line.startswith("Subject: ")), "")  # fmt: skip
                mailbox.subjects.append(subject.strip())
                return "250 OK"

        port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()
        self.url = (
            f"mailto://127.0.0.1:{port}?from=procplan@example.org&to=ada@example.org&mode=insecure"
        )


@pytest.fixture(scope="module")
def hook() -> Iterator[Hook]:
    made = Hook()
    yield made
    made.server.shutdown()


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    pytest.importorskip("aiosmtpd")
    made = Mailbox()
    yield made
    made.controller.stop()


def api(
    url: str, method: str, path: str, token: str | None = None, headers: Any = None, **kw: Any
) -> Any:
    sent = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    reply = httpx.request(method, url + path, headers=sent, timeout=30, **kw)
    assert reply.status_code < 300, reply.text
    return reply.json()


def submit(url: str, command: list[str], **fields: Any) -> int:
    body = {"command": command, "node_id": NODE, "workdir": "/tmp", **fields}
    return int(api(url, "POST", "/api/v1/jobs", json=body)["job_id"])


def until(predicate: Any, timeout: float = 30.0) -> Any:
    return wait_until(predicate, timeout, step=0.05)


TOKEN = "notify-e2e-token"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_every_event_reaches_mail_and_webhook_once_across_a_kill_9(
    tmp_path: Path, hook: Hook, mailbox: Mailbox
) -> None:
    database = tmp_path / "notify.db"
    args = ["--demo", "--database", str(database)]
    server = ServerProcess(args, env=SETTINGS, log_file=tmp_path / "server.log").start()
    try:
        url = server.url
        api(url, "POST", "/api/v1/notify/channels", json={"url": hook.url, "label": "hook"})
        api(url, "POST", "/api/v1/notify/channels", json={"url": mailbox.url, "label": "mail"})
        api(url, "POST", "/api/v1/users", json={"name": "bob"})
        bob = api(url, "POST", "/api/v1/tokens", json={"user": "bob", "name": "e2e"})["token"]

        done = submit(url, ["true"], time_limit_s=600)
        until(lambda: f"Job {done} completed (exit code 0)" in hook.titles())
        assert "Efficiency: " in hook.body_of(f"Job {done} completed (exit code 0)")  # seff
        failed = submit(url, ["sh", "-c", "echo the-last-words >&2; exit 3"], time_limit_s=600)
        title = f"Job {failed} failed (exit code 3)"
        until(lambda: title in hook.titles())
        assert "the-last-words" in hook.body_of(title)  # its log's last lines

        victim = submit(url, ["sleep", "600"], gpu_count=8, priority=0)
        until(lambda: f"Job {victim} started" in hook.titles())
        urgent = submit(url, ["sleep", "600"], gpu_count=8, priority=1000)
        until(lambda: f"Job {victim} is being preempted" in hook.titles())
        until(lambda: f"Job {victim} was requeued" in hook.titles())
        until(lambda: f"Job {urgent} started" in hook.titles())

        # rule 3, ahead of time: bob books GPUs the open-ended urgent job holds
        soon = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=21)
        booking = {"node_id": NODE, "gpu_count": 8, "start": iso(soon),
                   "end": iso(soon + timedelta(hours=1)), "label": "bob's"}  # fmt: skip
        api(url, "POST", "/api/v1/bookings/check", bob, json=booking)
        made = httpx.post(f"{url}/api/v1/bookings", json=booking, timeout=30,
                          headers={"Authorization": f"Bearer {bob}"})  # fmt: skip
        assert made.status_code == 201, made.text
        until(lambda: any(t.startswith(f"Job {urgent} will be preempted") for t in hook.titles()))

        mine = {"node_id": "node-a", "gpu_count": 1, "start": iso(soon - timedelta(minutes=10)),
                "end": iso(soon + timedelta(hours=1)), "label": "mine"}  # fmt: skip
        booked = api(url, "POST", "/api/v1/bookings", json=mine)["booking"]
        until(lambda: any(t.startswith(f"Booking {booked['id']} starts in") for t in hook.titles()))

        # the webhook goes down; a job ends; the server dies before it could deliver
        hook.failing = True
        asked = time.monotonic()
        api(url, "DELETE", f"/api/v1/jobs/{urgent}")
        until(lambda: any(f"Job {urgent} cancelled" in s for s in mailbox.subjects))
        print(f"cancel -> e-mail: {time.monotonic() - asked:.2f} s")  # the figure for the notes
        server.proc.kill()  # type: ignore[union-attr]
        server.proc.wait(10)  # type: ignore[union-attr]
    finally:
        server.stop()
    assert f"Job {urgent} cancelled" not in hook.titles()
    hook.failing = False
    restarted = time.monotonic()
    with ServerProcess(args, env=SETTINGS, log_file=tmp_path / "server2.log"):
        until(lambda: f"Job {urgent} cancelled" in hook.titles())  # the retry, after restart
        print(f"restart -> webhook retry: {time.monotonic() - restarted:.2f} s")
        with contextlib.suppress(AssertionError):
            wait_until(lambda: False, 1.5, step=0.5)  # a moment for anything sent twice

    counts = {t: hook.titles().count(t) for t in hook.titles()}
    assert all(n == 1 for n in counts.values()), {t: n for t, n in counts.items() if n > 1}
    assert len(set(mailbox.subjects)) == len(mailbox.subjects), mailbox.subjects
    assert set(mailbox.subjects) >= set(hook.titles()) - {f"Job {urgent} cancelled"}


def test_time_and_agents_cause_notes_too(tmp_path: Path, hook: Hook, mailbox: Mailbox) -> None:
    env = {**SETTINGS, "PROCPLAN_AGENT_TOKEN": TOKEN}
    args = ["--demo", "--database", str(tmp_path / "notify2.db")]
    with ServerProcess(args, env=env, log_file=tmp_path / "server.log") as server:
        url = server.url
        api(url, "POST", "/api/v1/notify/channels", json={"url": hook.url, "events": "*"})
        lab = {"url": mailbox.url, "cluster": True, "label": "lab"}  # node events by default
        api(url, "POST", "/api/v1/notify/channels", json=lab)
        api(url, "POST", "/api/v1/users", json={"name": "mallory"})

        now = datetime.now(UTC).replace(second=0, microsecond=0)
        short = {"node_id": "node-a", "gpu_count": 1, "start": iso(now),
                 "end": iso(now + timedelta(minutes=10)), "label": "short"}  # fmt: skip
        ends = api(url, "POST", "/api/v1/bookings", json=short)["booking"]["id"]
        until(lambda: any(t.startswith(f"Booking {ends} ends in") for t in hook.titles()))

        width = len(api(url, "GET", "/api/v1/nodes/node-b")["gpus"])
        hour = {"gpu_count": width, "time_limit_s": 3600}
        submit(url, ["sleep", "600"], priority=1000, **hour)
        waiting = submit(url, ["sleep", "600"], **hour)
        until(lambda: api(url, "GET", f"/api/v1/jobs/{waiting}")["estimated_start"])
        submit(url, ["sleep", "600"], priority=1000, **hour)  # goes first: an hour later
        until(lambda: any(t.startswith(f"Job {waiting} now expected to start at")
                          for t in hook.titles()))  # fmt: skip

        agent = FakeAgent(url)
        booked = {"node_id": "lab-box", "gpu_ids": ["lab-box-gpu0"], "start": iso(now),
                  "end": iso(now + timedelta(hours=2)), "label": "mine"}  # fmt: skip
        api(url, "POST", "/api/v1/bookings", json=booked)
        agent.beat(user="mallory")
        until(lambda: "mallory runs a process on your booked GPU lab-box-gpu0" in hook.titles())
        until(lambda: "Node lab-box is offline" in mailbox.subjects)  # it went quiet
        agent.beat(user="mallory")
        until(lambda: "Node lab-box is back online" in mailbox.subjects)
    assert "Node lab-box is offline" not in hook.titles()  # the lab's channel, not the user's


class FakeAgent:
    """A node agent speaking the protocol from here: ``lab-box``, two GPUs, 0.5 s interval."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.auth = {"Authorization": f"Bearer {TOKEN}"}
        devices = [{"index": i, "uuid": f"GPU-LAB-{i}", "name": "NVIDIA A100", "memory_mb": 81920}
                   for i in range(2)]  # fmt: skip
        body = {"node_id": "lab-box", "hostname": "lab-box.example", "address": "10.0.0.9",
                "agent_version": "0.1.0", "interval_s": 0.5, "os_user": "root", "pid": 4242,
                "reader": "fake", "devices": devices}  # fmt: skip
        self.session = api(url, "POST", "/api/v1/agents/register", json=body, headers=self.auth)[
            "session"
        ]

    def beat(self, user: str) -> None:
        readings = [{"index": i, "uuid": f"GPU-LAB-{i}", "utilization_pct": 90.0,
                     "memory_used_mb": 4000, "memory_total_mb": 81920, "temperature_c": 60.0,
                     "power_w": 200.0, "mig": False} for i in range(2)]  # fmt: skip
        process = {"gpu_uuid": "GPU-LAB-0", "pid": 31337, "used_memory_mb": 4000, "user": user,
                   "command": "python steal.py", "job_id": None, "ancestors": [1]}  # fmt: skip
        body = {"session": self.session, "readings": readings, "processes": [process],
                "jobs": [], "read_error": None}  # fmt: skip
        api(self.url, "POST", "/api/v1/agents/lab-box/heartbeat", json=body, headers=self.auth)
