"""What identity costs one request, in-process: the app called as ASGI, no network, no cycle.

Composes a ``--demo`` server on a fresh SQLite file and times, one at a time, ``--requests``
accepted job submissions (``POST /api/v1/jobs``), job reads (``GET /api/v1/jobs/{id}``) and
booking create+cancel pairs. Clients prove who they are the way this version of the server
understands: a Bearer token (issue #12) — or, run against an earlier checkout
(``PYTHONPATH=/path/to/old/src``), the ``X-ProcPlan-User`` header it trusted. Comparing the two
runs isolates the server's own work per request, which a load test over HTTP on a noisy
machine cannot.

Prints a final ``SUMMARY`` line with the p50 and mean per request (µs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import machine
from procplan.config import Settings
from procplan.server import compose

HOUR = 3600


def identity_headers(composed: Any) -> tuple[str, list[tuple[bytes, bytes]]]:
    """This version's way to say who sends the requests."""
    accounts = getattr(composed, "accounts", None)
    if accounts is None:
        return "header", [(b"x-procplan-user", b"bench")]
    from procplan.core.identity import Role

    accounts.store.save_user("bench", 0, role=Role.ADMIN.value)
    secret, _ = accounts.create_token("bench", "bench", None)
    return "token", [(b"authorization", f"Bearer {secret}".encode())]


async def call(app: Any, method: str, path: str, headers: list[Any], body: object = None) -> Any:
    payload = b"" if body is None else orjson.dumps(body)
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
        "headers": [
            (b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()), *headers,
        ],
        "state": {},
    }  # fmt: skip
    chunks = [{"type": "http.request", "body": payload, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return chunks.pop() if chunks else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    data = b"".join(m.get("body", b"") for m in sent[1:])
    return status, orjson.loads(data) if data else None


async def timed(app: Any, count: int, step: Any) -> list[float]:
    samples = []
    for i in range(count):
        began = time.perf_counter()
        await step(app, i)
        samples.append(time.perf_counter() - began)
    return samples


async def run(count: int) -> tuple[str, dict[str, list[float]]]:
    workdir = Path(tempfile.mkdtemp(prefix="procplan-auth-"))
    settings = Settings(
        db_url=f"sqlite:///{workdir / 'auth.db'}", demo=True, local_node="ws",
        batch_requires_agent=False, local_agent="off",
    )  # fmt: skip
    composed = compose(settings)
    audit = getattr(composed, "audit", None)
    if audit is not None:
        audit.start()  # as `procplan server` does: entries are written in batches
    app = composed.app
    mode, headers = identity_headers(composed)
    job = {"kind": "batch", "gpu_count": 1, "command": ["true"], "name": "b"}
    first = await call(app, "POST", "/api/v1/jobs", headers, job)
    assert first[0] == 201, first
    job_id = first[1]["job_id"]
    base = (int(time.time()) // HOUR + 2) * HOUR

    async def submit(app: Any, _i: int) -> None:
        status, reply = await call(app, "POST", "/api/v1/jobs", headers, job)
        assert status == 201, reply

    async def read(app: Any, _i: int) -> None:
        status, _ = await call(app, "GET", f"/api/v1/jobs/{job_id}", headers)
        assert status == 200

    async def book_and_cancel(app: Any, i: int) -> None:
        start = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(base + i * HOUR))
        body = {"node_id": "node-b", "start": start, "duration_minutes": 60, "gpu_count": 1}
        status, reply = await call(app, "POST", "/api/v1/bookings", headers, body)
        assert status == 201, reply
        path = f"/api/v1/bookings/{reply['booking']['id']}/cancel"
        assert (await call(app, "POST", path, headers))[0] == 200

    try:
        await timed(app, 50, submit)  # warm up
        results = {
            "submit": await timed(app, count, submit),
            "read": await timed(app, count, read),
            "book_cancel": await timed(app, count, book_and_cancel),
        }
    finally:
        if audit is not None:
            audit.stop()
        composed.store.dispose()
    return mode, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args(argv)
    mode, results = asyncio.run(run(args.requests))
    figures = " ".join(
        f"{name}_p50_us={statistics.median(samples) * 1e6:.0f} "
        f"{name}_mean_us={statistics.fmean(samples) * 1e6:.0f}"
        for name, samples in results.items()
    )
    print(f"machine: {machine()}")
    print(f"SUMMARY identity={mode} requests={args.requests} {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
