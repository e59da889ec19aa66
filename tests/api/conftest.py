"""Fixtures of the API tests that need a real server on each store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.api.hostile import Served, served

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
