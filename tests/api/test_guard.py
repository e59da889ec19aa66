"""Failure containment (``api.guard``) and answers that cannot be rendered or are too big.

- An exception nobody expected is a JSON 500 with a request id (body and header, and in the
  log), and the keep-alive connection it came on stays usable.
- A body over its limit is a 413, declared or chunked; agents' log uploads have their own.
- A booking stored before instants were bounded (a "poison row") is left out of lists and
  views with a warning instead of taking them down for everyone.
- Repeated node ids are answered once; an answer over the configured size is a 400 that says
  how to narrow it, decided before the answer is built.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.hostile import AUTH, Served, send, served

from procplan.core.model import BookingRequest, Priority


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    with served(f"sqlite:///{tmp_path / 'guard.db'}", max_answer_bytes=1 << 20) as running:

        def boom() -> None:
            raise RuntimeError("a bug nobody expected")

        running.composed.app.add_api_route("/api/v1/test-boom", boom)
        running.composed.app.add_api_route("/api/test-boom", boom)
        yield running


def connect(server: Served) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)


def test_an_unexpected_error_is_a_json_500_that_keeps_the_connection(
    server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    conn = connect(server)
    with caplog.at_level(logging.ERROR, logger="procplan.api"):
        answer = send(conn, "GET", "/api/v1/test-boom")
    assert answer.status == 500
    document = answer.json()
    request_id = answer.headers["x-request-id"]
    assert document == {
        "error": "internal server error",
        "status": 500,
        "code": "internal_error",
        "request_id": request_id,
    }
    assert any(request_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert send(conn, "GET", "/health").status == 200  # the same socket
    compat = send(conn, "GET", "/api/test-boom").json()  # ProcPlan's shape: no code
    assert set(compat) == {"error", "status", "request_id"}
    assert send(conn, "GET", "/api/nodes").status == 200


def test_every_answer_carries_a_request_id(server: Served) -> None:
    conn = connect(server)
    ids = {send(conn, "GET", "/health").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3 and all(len(i) == 16 for i in ids)


def test_a_declared_body_over_the_limit_is_413_before_it_is_read(server: Served) -> None:
    conn = connect(server)
    big = b"x" * (1024 * 1024 + 1)
    answer = send(conn, "POST", "/api/v1/jobs", big, {"Content-Type": "application/json"})
    assert answer.status == 413
    assert answer.json()["code"] == "payload_too_large"
    assert "1048576 bytes" in answer.json()["error"]
    assert send(conn, "GET", "/health").status == 200


def test_a_chunked_body_is_cut_off_at_the_limit(server: Served) -> None:
    """No Content-Length: the server counts as it reads and stops at the limit."""
    chunk = b"x" * 65536
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(
            b"POST /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        head = b""
        for _ in range(40):  # 2.5 MiB offered, 1 MiB accepted
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                break
        sock.settimeout(10)
        while b"\r\n\r\n" not in head:
            part = sock.recv(65536)
            if not part:
                break
            head += part
    assert head.startswith(b"HTTP/1.1 413"), head[:200]


def test_agent_log_chunks_have_their_own_limit(server: Served) -> None:
    """A 2 MiB log upload is over the body limit but within the log-chunk limit: it is read
    (and refused for its unknown session, not for its size)."""
    conn = connect(server)
    path = "/api/v1/agents/node-a/jobs/1/logs?session=nope&offset=0"
    answer = send(conn, "POST", path, b"x" * (2 << 20), dict(AUTH))
    assert answer.status != 413 and answer.status < 500, answer.body[:200]
    over = send(conn, "POST", path, b"x" * ((4 << 20) + 1), dict(AUTH))
    assert over.status == 413


def test_a_poison_row_is_left_out_not_fatal(
    server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """A booking whose end lies past year 9999, written by a server before the fix (the core
    now refuses it), must not take ``GET /api/v1/bookings`` or the calendars down."""
    composed = server.composed
    start = 253_402_297_200  # 9999-12-31T23:00:00Z
    poison = BookingRequest(
        "node-a", start, start + 7200, "mallory", "poison", Priority.HIGH, None, 1
    )
    fine = BookingRequest(
        "node-a", 1_795_431_600, 1_795_435_200, "ada", "fine", Priority.LOW, None, 1
    )
    composed.bookings.bookings.create(poison, start - 60, lambda node: None)
    composed.bookings.bookings.create(fine, 1_795_428_000, lambda node: None)
    conn = connect(server)
    with caplog.at_level(logging.WARNING):
        listed = send(conn, "GET", "/api/v1/bookings")
        views = [
            send(conn, "GET", "/api/v1/bookings?user=mallory"),
            send(conn, "GET", "/api/v1/bookings?status=active"),
            send(
                conn,
                "GET",
                "/api/availability?node_id=node-a&start=9999-12-30T00:00:00Z"
                "&end=9999-12-31T23:00:00Z&granularity=day",
            ),
            send(
                conn, "GET", "/api/v1/calendar?start=9999-12-25T00:00:00Z&end=9999-12-31T23:59:00Z"
            ),
        ]
    assert listed.status == 200
    assert [b["label"] for b in listed.json()["bookings"]] == ["fine"]
    assert listed.json()["total"] == 2  # the row exists; it just cannot be shown
    assert [v.status for v in views] == [200] * 4
    assert any("cannot be rendered" in r.getMessage() for r in caplog.records)
    assert any("outside years 1..9999" in r.getMessage() for r in caplog.records)


def test_repeated_node_ids_are_answered_once(server: Served) -> None:
    """1,000 copies of one id once produced a 517 MB answer; now it is one node's grid."""
    conn = connect(server)
    ask = {"node_ids": ["node-a"] * 1000, "start": "2026-11-23T00:00:00Z",
           "end": "2026-11-24T00:00:00Z"}  # fmt: skip
    answer = send(conn, "POST", "/api/availability_bulk", json.dumps(ask).encode())
    assert answer.status == 200
    assert [a["node"]["id"] for a in answer.json()["availability"]] == ["node-a"]
    calendar = send(conn, "GET", "/api/v1/calendar?start=2026-11-23&end=2026-11-24"
                    "&node_ids=" + ",".join(["node-b"] * 1000))  # fmt: skip
    assert [n["id"] for n in calendar.json()["nodes"]] == ["node-b"]


def test_an_answer_over_the_cap_is_refused_before_it_is_built(server: Served) -> None:
    """This server's cap is 1 MiB: a year of hours for three nodes is far more, a week not."""
    conn = connect(server)
    year = {"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}
    answer = send(conn, "POST", "/api/availability_bulk", json.dumps(year).encode())
    assert answer.status == 400
    message = answer.json()["error"]
    assert "over this server's limit of 1.0 MB" in message and "granularity=day" in message
    week = {"start": "2026-11-23T00:00:00Z", "end": "2026-11-30T00:00:00Z"}
    small = send(conn, "POST", "/api/availability_bulk", json.dumps(week).encode())
    assert small.status == 200 and len(small.body) < 1 << 20
    history = send(conn, "GET", "/api/v1/nodes/node-b/history?start=2026-01-01&end=2026-12-01")
    assert history.status == 400 and "larger step" in history.json()["error"]


def test_a_page_of_jobs_stops_at_the_answer_cap(server: Served) -> None:
    """Twenty jobs of 60 kB of command line each: a 1 MiB answer holds some; paging by
    ``offset`` gets the rest."""
    conn = connect(server)
    headers = {"X-ProcPlan-User": "ada", "Content-Type": "application/json"}
    for n in range(20):
        job = {"command": ["echo", "x" * 60_000], "gpu_count": 1, "name": f"big{n:02d}"}
        assert send(conn, "POST", "/api/v1/jobs", json.dumps(job).encode(), headers).status == 201
    seen: list[str] = []
    pages = 0
    while len(seen) < 20:
        page = send(conn, "GET", f"/api/v1/jobs?limit=1000&offset={len(seen)}")
        assert page.status == 200 and len(page.body) <= 1 << 20
        document = page.json()
        assert document["total"] == 20 and document["jobs"]
        assert document.get("truncated", False) is (len(seen) + len(document["jobs"]) < 20)
        seen += [job["name"] for job in document["jobs"]]
        pages += 1
    assert sorted(seen) == [f"big{n:02d}" for n in range(20)] and pages >= 2
