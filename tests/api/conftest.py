"""Fixtures of the API tests: a real server on each store, and users of an in-process one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.api.hostile import Served, served
from tests.conftest import signed_in

from procplan.server import Composed
from procplan.service.run_as import RunAsPolicy

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def any_store_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """The demo cluster behind real uvicorn, once on SQLite and once on PostgreSQL."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'procplan.db'}"
    with served(url) as running:
        yield running


@pytest.fixture
def workstation(composed: Composed) -> None:
    """As on a workstation whose server runs as a regular user: batch jobs run as that
    account (a server running as root without switching users takes admins' jobs only)."""
    composed.app.state.ctx.run_as = RunAsPolicy(
        switches_users=False, own_uid=1000, own_account="labuser"
    )


@pytest.fixture
def alice(composed: Composed) -> Iterator[TestClient]:
    with signed_in(composed, "alice") as test_client:
        yield test_client


@pytest.fixture
def bob(composed: Composed) -> Iterator[TestClient]:
    with signed_in(composed, "bob") as test_client:
        yield test_client


@pytest.fixture
def anon(composed: Composed) -> Iterator[TestClient]:
    """A client that proves nobody."""
    with TestClient(composed.app) as test_client:
        yield test_client
