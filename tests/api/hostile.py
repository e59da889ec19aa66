"""Shared by the hostile-input tests: a real server (uvicorn, keep-alive sockets) on either
store, a fingerprint of everything stored, and raw HTTP on one connection."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from tests.conftest import FIXED_NOW, demo_settings

from procplan.server import Composed, compose
from procplan.store import tables
from procplan.testing import FakeClock, ThreadedServer

AGENT_TOKEN = "hostile-test-token"
AUTH = {"Authorization": f"Bearer {AGENT_TOKEN}"}
# Every table a refused request must leave alone, and the version counters.
_COUNTED = (
    tables.bookings,
    tables.claims,
    tables.jobs,
    tables.tenants,
    tables.memberships,
    tables.users,
    tables.nodes,
    tables.gpus,
    tables.node_status,
    tables.job_logs,
)


@dataclass
class Served:
    """A composed server on a real port; ``url`` is its base URL."""

    composed: Composed
    url: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def fingerprint(self) -> dict[str, Any]:
        """Row counts of every table and the committed version counters."""
        with self.composed.store.engine.connect() as conn:
            counts = {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in _COUNTED
            }
            meta = dict(conn.execute(sa.select(tables.meta.c.key, tables.meta.c.value)).all())
        return {**counts, **meta}


@contextmanager
def served(db_url: str, **overrides: object) -> Iterator[Served]:
    """The demo cluster with an agent token, its scheduler running, behind real uvicorn."""
    overrides.setdefault("agent_token", AGENT_TOKEN)
    composed = compose(demo_settings(db_url, **overrides), clock=FakeClock(FIXED_NOW))
    composed.scheduler.start()
    try:
        # Local peers are who the kernel says: these tests' raw requests come from the user
        # running them, which is the server's own user here, so an admin (issue #12).
        with ThreadedServer(composed.app, peer_identity=True) as url:
            httpx.get(f"{url}/api/v1/me").raise_for_status()  # meet the peer: its user row
            yield Served(composed, url)
    finally:
        composed.scheduler.stop()
        composed.store.dispose()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on ``conn`` (kept open), read to the end; a body is JSON unless the
    headers say otherwise."""
    headers = dict(headers or {})
    if body is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
