"""Job logs per rank and across requeued runs (issue #19), through the agent and job routes."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.api.test_agents_api import AUTH, COMPOSE_SETTINGS, NODE, register, submit_batch

from procplan.server import Composed
from procplan.store.logs_repo import stream_key

__all__ = ["COMPOSE_SETTINGS"]  # the root ``composed``, with the agent token these tests speak


def ship(client: TestClient, session: str, job_id: int, data: bytes, **params: object) -> None:
    url = f"/api/v1/agents/{NODE}/jobs/{job_id}/logs"
    query = {"session": session, "run": 0, "stream": "stdout", "offset": 0, **params}
    response = client.post(url, params=query, content=data, headers=AUTH)
    assert response.status_code == 200, response.text


def read(client: TestClient, job_id: int, **params: object) -> tuple[bytes, str]:
    response = client.get(f"/api/v1/jobs/{job_id}/logs", params=params)
    assert response.status_code == 200, response.text
    return response.content, response.headers["X-Log-Size"]


def test_each_rank_has_its_own_log(client: TestClient, composed: Composed) -> None:
    session = register(client)["session"]
    job_id = submit_batch(client)
    composed.scheduler.run_once()
    ship(client, session, job_id, b"rank 0\n")
    ship(client, session, job_id, b"rank 1 says hi\n", rank=1)
    ship(client, session, job_id, b"rank 1 err\n", rank=1, stream="stderr")
    assert read(client, job_id) == (b"rank 0\n", "7")
    assert read(client, job_id, rank=1) == (b"rank 1 says hi\n", "15")
    assert read(client, job_id, rank=1, stream="stderr")[0] == b"rank 1 err\n"
    assert read(client, job_id, rank=2) == (b"", "0")
    assert client.get(f"/api/v1/jobs/{job_id}/logs", params={"rank": -1}).status_code == 400


def test_a_read_without_a_run_gives_every_run_in_order(
    client: TestClient, composed: Composed
) -> None:
    session = register(client)["session"]
    job_id = submit_batch(client)
    composed.scheduler.run_once()
    ship(client, session, job_id, b"first\n")
    separator = b"==== procplan: job 1 run 2 (--run 1) ...; previous run: preempted ====\n"
    ship(client, session, job_id, separator + b"second\n", run=1)
    whole = b"first\n" + separator + b"second\n"
    assert read(client, job_id) == (whole, str(len(whole)))
    assert read(client, job_id, offset=3, limit=10)[0] == whole[3:13]  # across the runs
    assert read(client, job_id, offset=len(whole) - 4)[0] == b"ond\n"
    assert read(client, job_id, run=0) == (b"first\n", "6")
    assert read(client, job_id, run=1)[0] == separator + b"second\n"


def test_stream_keys_fit_the_stream_column() -> None:
    assert (stream_key("stdout"), stream_key("stderr", 0)) == ("stdout", "stderr")
    assert (stream_key("stdout", 1), stream_key("stderr", 9999)) == ("out.1", "err.9999")
    assert max(len(stream_key(s, 9999)) for s in ("stdout", "stderr")) <= 8
