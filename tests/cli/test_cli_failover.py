"""Several server URLs (ADR 0021): the transport fails over, ``procplan run`` waits through.

Real sockets, no mocks: a closed port refuses (the request surely never arrived), a
``hangup`` server reads each request and closes without answering (it may have been applied),
and ``fake_server`` answers. The end-to-end test with real servers on PostgreSQL is
``tests/e2e/test_failover_e2e.py``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from procplan.cli import run
from procplan.cli.main import app
from procplan.client import ProcPlanClient, ServerUnreachable, parse_job, server_urls
from procplan.client.transport import Transport

NODES = "/api/v1/nodes"
WAIT = "/api/v1/jobs/42/wait"


@dataclass
class Hangup:
    """A server that reads one request per connection and closes it without a word."""

    url: str = ""
    received: list[bytes] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _serve_hangups(listener: socket.socket, hangup: Hangup) -> None:
    listener.settimeout(0.05)  # so that the fixture's stop is seen at once
    while not hangup.stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            hangup.received.append(data)


@pytest.fixture
def hangup() -> Iterator[Hangup]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    made = Hangup(f"http://127.0.0.1:{listener.getsockname()[1]}")
    thread = threading.Thread(target=_serve_hangups, args=(listener, made), daemon=True)
    thread.start()
    yield made
    made.stop.set()
    thread.join(5)
    listener.close()


def test_server_urls_split_a_comma_list_and_keep_one_url_as_it_was():
    assert server_urls("http://a:8080/") == ["http://a:8080"]
    assert server_urls(" http://a:8080/ , http://b:8080,, ") == ["http://a:8080", "http://b:8080"]
    assert server_urls("unix:///run/procplan.sock,http://b") == [
        "unix:///run/procplan.sock",
        "http://b",
    ]


def test_a_refused_server_is_skipped_for_every_method_and_the_next_one_stays(fake_server, dead_url):
    fake_server.add("POST", "/api/v1/bookings", 201, {"booking": {"id": 7}})
    fake_server.add("GET", NODES, 200, {"nodes": []})
    with ProcPlanClient(f"{dead_url},{fake_server.url}") as client:
        assert client.transport.base_url == dead_url
        assert client.bookings.create("node-a", "2026-11-24T09:00", gpu_count=1)["booking"]
        assert client.transport.base_url == fake_server.url  # sticky: the one that answered
        assert client.nodes.list() == {"nodes": []}
    assert [r.method for r in fake_server.requests] == ["POST", "GET"]


def test_a_broken_read_is_sent_to_the_next_server(fake_server, hangup):
    fake_server.add("GET", NODES, 200, {"nodes": [{"id": "n"}]})
    with ProcPlanClient(f"{hangup.url},{fake_server.url}") as client:
        assert client.nodes.list() == {"nodes": [{"id": "n"}]}
    assert len(hangup.received) == 1


def test_a_broken_write_is_not_sent_again_anywhere(fake_server, hangup):
    """The first server may have applied it: sending it to the next could apply it twice."""
    fake_server.add("POST", "/api/v1/bookings", 201, {"booking": {"id": 7}})
    with (
        ProcPlanClient(f"{hangup.url},{fake_server.url}") as client,
        pytest.raises(ServerUnreachable) as caught,
    ):
        client.bookings.create("node-a", "2026-11-24T09:00", gpu_count=1)
    assert caught.value.url == hangup.url
    assert len(hangup.received) == 1
    assert fake_server.requests == []


def test_each_server_is_tried_once_and_the_last_failure_is_raised(dead_url, hangup):
    transport = Transport(f"{dead_url},{hangup.url}")
    try:
        with pytest.raises(ServerUnreachable) as caught:
            transport.call("GET", NODES)
    finally:
        transport.close()
    assert caught.value.url == hangup.url
    assert len(hangup.received) == 1


def test_one_url_keeps_its_single_timeout(fake_server):
    transport = Transport(fake_server.url, timeout=4.0)
    try:
        assert transport.base_urls == [fake_server.url]
        assert transport._http(0).timeout.connect == 4.0
    finally:
        transport.close()


def test_procplan_run_works_through_a_list_whose_first_server_is_down(fake_server, dead_url):
    job = {
        "id": "42",
        "kind": "interactive",
        "state": "running",
        "gpu_count": 0,
        "node_ids": ["n"],
        "version": 9,
    }
    fake_server.add("POST", "/api/v1/jobs", 201, {"job_id": "42", "job": {**job, "version": 8}})
    fake_server.add("POST", "/api/v1/jobs/42/release", 200, {**job, "state": "completed"})
    result = CliRunner().invoke(
        app,
        ["run", "--node", "n", "--", "true"],
        env={"PROCPLAN_URL": f"{dead_url},{fake_server.url}"},
    )
    assert result.exit_code == 0, result.output


def pending(**fields: Any) -> dict[str, Any]:
    job = {
        "id": "42",
        "kind": "interactive",
        "state": "pending",
        "gpu_count": 1,
        "submitted_at": "2026-11-24T12:00:00+00:00",
        "lease_expires_at": "2026-11-24T12:00:30+00:00",
        "version": 7,
    }
    return {**job, **fields}


def test_waiting_rides_out_a_server_that_is_briefly_away(fake_server):
    """A proxy's 503 (or no answer at all) while another server takes over is retried."""
    started = pending(state="running", version=8, allocated_gpus=["n-gpu0"], gpu_indices=[0])
    fake_server.add_sequence(
        "GET", WAIT, [(503, {"error": "no upstream", "status": 503}), (200, started)]
    )
    with ProcPlanClient(fake_server.url) as client:
        event = run.poll_through_outages(client, parse_job(pending()), run.Inbox())
    assert not isinstance(event, run.Signalled)
    assert event.state == "running"
    assert len(fake_server.calls("GET", WAIT)) == 2


def test_waiting_gives_up_once_the_lease_would_have_lapsed(dead_url):
    submitted = "2026-11-24T12:00:00+00:00"
    short = pending(submitted_at=submitted, lease_expires_at="2026-11-24T12:00:01+00:00")
    job = parse_job(short)
    assert job.lease_expires_at is not None and job.submitted_at is not None
    assert job.lease_expires_at - job.submitted_at == timedelta(seconds=1)
    with ProcPlanClient(dead_url) as client, pytest.raises(ServerUnreachable):
        run.poll_through_outages(client, job, run.Inbox())
