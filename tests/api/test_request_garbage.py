"""A refused booking is freed by reference counting, not left for the garbage collector.

Issue #18: under ProcPlan 1.0's conflict-heavy write mix about half of all attempts are
refused, and each refusal's exception used to sit in a reference cycle (the exception, its
traceback, a frame whose locals hold the exception again) with the whole request behind it:
~50,000 objects per young-generation collection, a 40 ms pause of every request in flight
every second or two. These tests pause the collector, make refusals, and count what only
the collector could free.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection
from starlette.requests import Request
from tests.conftest import TEST_ADMIN, token_for

from procplan.core.errors import Conflict, DomainError
from procplan.core.identity import Role
from procplan.core.model import BookingRequest
from procplan.server import Composed
from procplan.service.booking_precheck import refuse_from_mirror
from procplan.store.engine import Store, make_engine
from procplan.store.migrate import upgrade
from procplan.store.write_batcher import WriteBatcher

HOUR = 3600
FIXED_NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC (tests/conftest.py)
TOMORROW_10 = "2026-11-24T10:00:00+00:00"
TOMORROW_12 = "2026-11-24T12:00:00+00:00"
CLIENT = ("192.0.2.1", 5000)  # (TEST-NET-1): this test's requests, among any garbage


@pytest.fixture
def paused_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def asgi_call(app: Any, token: str, method: str, path: str, payload: object) -> int:
    """One request straight into the ASGI app: no client library (TestClient's portal
    leaves ~80 cyclic objects a request of its own), just the server's side."""
    body = json.dumps(payload).encode()
    headers = [
        (b"host", b"testserver"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": CLIENT,
        "server": ("192.0.2.2", 80), "state": {},
    }  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


def booking(gpu: str, label: str | None = "garbage test") -> dict[str, object]:
    return {"node_id": "node-a", "gpu_ids": [gpu], "start": TOMORROW_10, "end": TOMORROW_12,
            "user_label": label}  # fmt: skip


def native(gpu: str) -> dict[str, object]:
    return {"node_id": "node-a", "gpu_ids": [gpu], "start": TOMORROW_10, "end": TOMORROW_12,
            "label": "garbage test"}  # fmt: skip


def test_refusals_through_the_api_leave_nothing_for_the_collector(
    composed: Composed, paused_collector: None
) -> None:
    token = token_for(composed, TEST_ADMIN, Role.ADMIN)
    refusals = [
        ("POST", "/api/book", booking("node-a-gpu0"), 400),  # the pre-check's, from memory
        ("POST", "/api/book", booking("node-a-gpu1", label=None), 400),  # the body's
        ("DELETE", "/api/bookings/9999", {}, 404),
        ("POST", "/api/v1/bookings", native("node-a-gpu0"), 409),  # via the thread pool
        ("POST", "/api/v1/bookings/check", native("node-a-gpu0"), 409),
    ]

    async def run(rounds: int) -> None:
        for _ in range(rounds):
            for method, path, payload, status in refusals:
                assert await asgi_call(composed.app, token, method, path, payload) == status

    async def scenario() -> list[object]:
        assert await asgi_call(composed.app, token, "POST", "/api/book", booking("node-a-gpu0"))
        await run(3)  # warm: first-call caches
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept in gc.garbage
        try:
            await run(20)
            gc.collect()
        finally:
            gc.set_debug(0)
        found, gc.garbage[:] = gc.garbage[:], []
        return found

    # Only this test's requests and refusals count: other tests' threads, ending meanwhile,
    # may leave their own garbage. Before the fix: each refusal left both behind.
    left = [o for o in asyncio.run(scenario()) if is_ours(o)]
    assert left == []


def is_ours(thing: object) -> bool:
    if isinstance(thing, Request):
        return thing.scope.get("client") == CLIENT
    return isinstance(thing, DomainError)


def test_the_pre_checks_refusal_is_freed_with_its_frame(
    composed: Composed, paused_collector: None
) -> None:
    composed.bookings.create(request("alice"), whole_hours=True)
    caught: list[weakref.ref[BaseException]] = []
    try:
        refuse_from_mirror(composed.bookings, request("bob"), whole_hours=True, drained=None)
    except Conflict as exc:
        caught.append(weakref.ref(exc))
    assert caught and caught[0]() is None


def test_a_refusal_from_the_writer_is_freed_with_its_batch(
    tmp_path: Path, paused_collector: None
) -> None:
    store = Store(make_engine(f"sqlite:///{tmp_path / 'w.db'}"))
    upgrade(store)
    batcher = WriteBatcher(store)
    raised: list[weakref.ref[BaseException]] = []
    hold = threading.Event()

    def blocker(conn: Connection) -> None:
        hold.wait(10)

    def refuse(conn: Connection) -> None:
        refusal = Conflict("taken")  # held in a local, as real code does
        raised.append(weakref.ref(refusal))
        raise refusal

    first = batcher.submit(blocker)  # the next three queue behind it: one batch (savepoints)
    batch = [batcher.submit(refuse) for _ in range(3)]
    hold.set()
    first.result(10)
    alone = batcher.submit(refuse)  # and one on its own
    for future in [*batch, alone]:
        with pytest.raises(Conflict):
            future.result(10)
    del batch, alone, future
    assert len(raised) == 4
    assert [ref() for ref in raised] == [None] * 4
    store.dispose()


def request(user: str) -> BookingRequest:
    return BookingRequest(
        node_id="node-a",
        start=FIXED_NOW + 24 * HOUR,
        end=FIXED_NOW + 26 * HOUR,
        user=user,
        label="garbage test",
        gpu_ids=("node-a-gpu0",),
    )
