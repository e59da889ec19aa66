"""The hostile-input table (issue #11), against a real server on SQLite and on PostgreSQL.

Each case is what a hostile or broken client sends. Every one must get a 4xx whose message
says what to fix, leave the database exactly as it was, and leave the keep-alive connection
usable: the next request on the same socket succeeds.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass

from tests.api.hostile import AUTH, Served, send

USER = {"X-ProcPlan-User": "mallory", "Content-Type": "application/json"}
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | None
    status: int
    needle: str  # part of the error message
    headers: tuple[tuple[str, str], ...] = tuple(USER.items())


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def booking(**changes: object) -> bytes:
    fields: dict[str, object] = {
        "node_id": "node-a",
        "gpu_count": 1,
        "start": "2026-11-24T09:00:00Z",
        "duration_minutes": 60,
    }
    fields.update(changes)
    return json.dumps(fields).encode()


def job(**changes: object) -> bytes:
    fields: dict[str, object] = {"command": ["true"], "gpu_count": 1}
    fields.update(changes)
    return json.dumps(fields).encode()


BIG = 2 * 1024 * 1024
CASES = [
    # -- size and shape of the body
    Case("oversized body", "POST", "/api/v1/jobs", b"{" + b" " * BIG + b"}", 413, "too large"),
    Case("deep nesting", "POST", "/api/v1/jobs", b"[" * 5000 + b"]" * 5000, 400, "Invalid JSON"),
    Case("not an object", "POST", "/api/book", b"[1, 2]", 400, "must be an object"),
    Case("invalid UTF-8", "POST", "/api/v1/bookings", b'{"label": "\xff"}', 400, "Invalid JSON"),
    Case("NaN", "POST", "/api/v1/tenants", b'{"name": "t", "fair_share_weight": NaN}', 400, "JSON"),
    Case("Infinity", "POST", "/api/v1/jobs", b'{"gpu_count": Infinity}', 400, "Invalid JSON"),
    Case("5,000 digits", "POST", "/api/v1/jobs", b'{"gpu_count": ' + b"9" * 5000 + b"}", 400,
         "JSON"),
    Case("5,000-digit string", "POST", "/api/mark_done", body(booking_id="9" * 5000), 400,
         "must be an integer"),
    Case("1e400", "POST", "/api/v1/jobs", b'{"time_limit_s": 1e400}', 400, "Invalid JSON"),
    # -- strings the stores would refuse or disagree on
    Case("lone surrogate", "POST", "/api/v1/bookings", b'{"label": "\\ud800"}', 400, "surrogate"),
    Case("NUL in a label", "POST", "/api/v1/bookings", booking(label="a\x00b"), 400, "U+0000"),
    Case("NUL in a user", "POST", "/api/v1/bookings", booking(user="a\x00"), 400, "U+0000"),
    Case("NUL in a job name", "POST", "/api/v1/jobs", job(name="x\x00"), 400, "U+0000"),
    Case("NUL in a command", "POST", "/api/v1/jobs", job(command=["a\x00"]), 400, "NUL"),
    Case("NUL in an env value", "POST", "/api/v1/jobs", job(env={"A": "\x00"}), 400, "NUL"),
    Case("NUL in a tenant e-mail", "POST", "/api/v1/tenants", body(name="t", email="a\x00"), 400,
         "U+0000"),
    Case("ANSI in a label", "POST", "/api/v1/bookings", booking(label="\x1b]0;pwned\x07"), 400,
         "control character"),
    Case("ANSI in a compat label", "POST", "/api/book",
         body(node_id="node-a", gpu_count=1, start="2026-11-24T09:00:00Z",
              end="2026-11-24T10:00:00Z", user_label="\x1b[2J"), 400, "control character"),
    # The booking writer asked PostgreSQL for node "\x00" before anything checked the id: 500
    Case("NUL in a compat node id", "POST", "/api/book",
         body(node_id="\x00", start="2000-01-01T00:00:00Z", end="2000-01-01T01:00:00Z",
              user_label="x"), 400,
         "Unknown node id"),
    Case("bidi override in a job name", "POST", "/api/v1/jobs", job(name="a\u202eb"), 400,
         "bidirectional"),
    Case("129-character user", "POST", "/api/v1/jobs", job(user="u" * 129), 400,
         "at most 128"),
    Case("30,000-character user", "POST", "/api/v1/bookings", booking(user="u" * 30_000), 400,
         "at most 128"),
    Case("30,000-character header user", "POST", "/api/v1/jobs", job(),
         400, "too long", (("X-ProcPlan-User", "u" * 30_000), *JSON.items())),
    # (C0 characters in a header never reach us: the HTTP parser refuses them first.)
    Case("C1 control character in the user header", "POST", "/api/v1/jobs", job(), 400,
         "control character", (("X-ProcPlan-User", "a\x85b"), *JSON.items())),
    # -- instants outside years 1..9999, impossible dates, durations
    Case("year 9999 at -14:00", "POST", "/api/v1/bookings",
         booking(start="9999-12-31T22:00:00-14:00"), 400, "must lie between"),
    Case("year 1 at +14:00", "GET",
         "/api/availability?node_id=node-a&start=0001-01-01T00:00:00%2B14:00"
         "&end=0001-01-02T00:00:00Z", None, 400, "must lie between"),
    Case("end past 9999 by duration", "POST", "/api/v1/bookings",
         booking(start="9999-12-31T23:00:00Z", duration_minutes=120), 400, "must lie between"),
    Case("Feb 30", "POST", "/api/book",
         body(node_id="node-a", gpu_count=1, start="2026-02-30T00:00:00Z",
              end="2026-03-01T00:00:00Z", user_label="x"), 400, "Invalid timestamp"),
    Case("negative duration", "POST", "/api/v1/bookings", booking(duration_minutes=-60), 400,
         "duration_minutes must be an integer"),
    Case("huge duration", "POST", "/api/v1/bookings", booking(duration_minutes=10**12), 400,
         "duration_minutes must be an integer"),
    Case("long timestamp", "GET", "/api/v1/calendar?start=" + "2" * 70 + "&end=x", None, 400,
         "at most 64"),
    Case("history of every minute for a century", "GET",
         "/api/v1/nodes/node-b/history?start=1970-01-01&end=2070-01-01&step=60", None, 400,
         "too many"),
    # -- numbers outside their columns and pages
    Case("huge offset", "GET", "/api/v1/bookings?offset=" + "9" * 25, None, 400,
         "offset must be an integer"),
    Case("huge limit", "GET", "/api/v1/jobs?limit=100000", None, 400, "limit must be"),
    Case("quota past a 32-bit column", "POST", "/api/v1/tenants",
         body(name="t", max_concurrent_jobs=2**40), 400, "max_concurrent_jobs must be"),
    Case("pid past a 32-bit column", "POST", "/api/v1/jobs", job(pid=2**31), 400,
         "pid must be"),
    Case("array index past a 32-bit column", "POST", "/api/v1/jobs", job(array="99999999999"),
         400, "array"),
    Case("gpu memory past a 32-bit column", "POST", "/api/v1/jobs", job(gpu_memory_mb=2**40),
         400, "gpu_memory_mb"),
    Case("a bool for an integer", "POST", "/api/v1/jobs", job(gpu_count=True), 400,
         "gpu_count must be"),
    # -- lists
    Case("5,000 GPU ids", "POST", "/api/book",
         body(node_id="node-a", gpu_ids=["node-a-gpu0"] * 5000, start="2026-11-24T09:00:00Z",
              end="2026-11-24T10:00:00Z", user_label="x"), 400, "at most 4096"),
    Case("an agent's 1,000 devices", "POST", "/api/v1/agents/register",
         body(node_id="n", hostname="h", address="a", interval_s=2,
              devices=[{"index": 0, "uuid": "u", "name": "g"}] * 1000),
         400, "at most 64", (*AUTH.items(), *JSON.items())),
    Case("unknown bulk node", "POST", "/api/availability_bulk", body(node_ids=["node-a", "x"]),
         400, "Unknown node id 'x'"),
    # -- paths
    Case("path traversal", "GET", "/../../etc/passwd", None, 404, "Not found"),
    Case("encoded path traversal", "GET", "/%2e%2e/%2e%2e/etc/passwd", None, 404, "Not found"),
    Case("encoded slash traversal", "GET", "/..%2f..%2fpyproject.toml", None, 404, "Not found"),
    Case("booking id past int64", "GET", f"/api/v1/bookings/{2**64}", None, 400, "booking_id"),
    Case("job id of 5,000 digits", "GET", "/api/v1/jobs/" + "9" * 5000, None, 404,
         "does not exist"),
]  # fmt: skip


def test_every_hostile_request_is_a_clear_4xx_that_changes_nothing(
    any_store_server: Served,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", any_store_server.port, timeout=30)
    before = any_store_server.fingerprint()
    failed = []
    for case in CASES:
        answer = send(conn, case.method, case.path, case.body, dict(case.headers))
        message = answer.json().get("error", "") if answer.body.startswith(b"{") else ""
        if answer.status != case.status or case.needle not in message:
            failed.append(f"{case.name}: {answer.status} {answer.body[:300]!r}")
        health = send(conn, "GET", "/health")  # the same socket: still usable
        if health.status != 200:
            failed.append(f"{case.name}: the next request got {health.status}")
    conn.close()
    assert not failed, "\n".join(failed)
    assert any_store_server.fingerprint() == before
