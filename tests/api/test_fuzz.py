"""Schema-driven fuzzing of every route (issue #11), on SQLite and on PostgreSQL.

schemathesis turns the OpenAPI document into Hypothesis strategies: for each operation, valid
requests (every field within its documented bounds) and invalid ones (every bound broken).
They go over real keep-alive connections to a real server; the property is that none is
answered with a 5xx and no connection is reset. The budget is bounded for CI
(``PROCPLAN_FUZZ_EXAMPLES`` per operation and mode, default 25) and the run is
deterministic, so a failure reproduces; raise the budget to explore.

Two adjustments, both about time, not about what is checked: ``POST /acquire`` is left out
(a valid request blocks until GPUs are free, by design: srun sets no timeout; its invalid
inputs are in the hostile table), and long polls are fuzzed with waits of at most half a
second (the documented maximum is 60 s).
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from tests.api.hostile import AUTH, Served

BUDGET = int(os.environ.get("PROCPLAN_FUZZ_EXAMPLES", "25"))
SKIPPED = {("POST", "/acquire")}
LONG_POLLS = {"timeout", "wait"}

pytestmark = pytest.mark.slow


def short_polls(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document with long-poll waits capped at half a second."""
    bounded = copy.deepcopy(document)
    for operations in bounded["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("name") in LONG_POLLS:
                    parameter["schema"]["maximum"] = 0.5
    return bounded


def fuzz(operation: Any, mode: GenerationMode, url: str, session: requests.Session) -> None:
    """``BUDGET`` requests of ``mode`` for ``operation``; Hypothesis shrinks a failure."""
    headers = dict(AUTH) if operation.path.startswith("/api/v1/agents") else None
    strategy = operation.as_strategy(mode, headers=headers)

    @settings(
        max_examples=BUDGET,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(base_url=url, session=session, timeout=30)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: "
            f"{response.text[:500]}\n{case.as_curl_command()}"
        )

    try:
        run()
    except Unsatisfiable:  # nothing to break: an operation without parameters or body
        assert mode is GenerationMode.NEGATIVE, operation.path


def test_no_generated_request_breaks_the_server(any_store_server: Served) -> None:
    schema = schemathesis.openapi.from_dict(short_polls(any_store_server.composed.app.openapi()))
    session = requests.Session()  # keep-alive: a reset connection fails the next call
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(operation, mode, any_store_server.url, session)
    assert any_store_server.composed.app.openapi()["paths"]  # the server still answers
    assert session.get(f"{any_store_server.url}/health", timeout=10).status_code == 200
