"""Shared fixtures: databases (SQLite file, PostgreSQL), in-process apps, a live server.

Tests that need PostgreSQL or Chromium skip with a reason when it is missing, unless
``PROCPLAN_REQUIRE_ALL=1`` (CI), which turns such a skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from procplan.config import Settings
from procplan.server import Composed, compose
from procplan.store.engine import Store, make_engine
from procplan.store.migrate import upgrade
from procplan.testing import FakeClock, ServerProcess

REQUIRE_ALL = os.environ.get("PROCPLAN_REQUIRE_ALL") == "1"
# Monday 2026-11-23 10:00 UTC: a fixed "now" for in-process tests.
FIXED_NOW = 1_795_428_000


def missing_dependency(reason: str) -> None:
    """Skip locally, fail in CI (PROCPLAN_REQUIRE_ALL=1)."""
    if REQUIRE_ALL:
        pytest.fail(f"required test dependency missing: {reason}")
    pytest.skip(reason)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'procplan.db'}"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    """A migrated SQLite store (no topology yet) on a fresh file."""
    opened = Store(make_engine(sqlite_url))
    upgrade(opened)
    yield opened
    opened.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema per test: the suite drops and recreates ``public``."""
    url = os.environ.get("PROCPLAN_TEST_PG_URL")
    if not url:
        missing_dependency("PROCPLAN_TEST_PG_URL is not set (see scripts/test-postgres.sh)")
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    except sa.exc.OperationalError as exc:
        missing_dependency(f"PostgreSQL at {url} is unreachable: {exc.orig}")
    finally:
        engine.dispose()
    yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(FIXED_NOW)


# ``--demo`` adds the server's own host as a node with 8 simulated GPUs; in-process tests name
# it so that results do not depend on the machine's host name.
LOCAL_NODE = "workstation"
DEMO_NODES = ["node-a", "node-b", LOCAL_NODE]


def demo_settings(db_url: str, **overrides: object) -> Settings:
    """In-process servers run no agents: batch jobs are placed anyway (the tests end them),
    unless a test asks for ``batch_requires_agent``."""
    overrides.setdefault("local_node", LOCAL_NODE)
    overrides.setdefault("batch_requires_agent", False)
    return Settings(db_url=db_url, demo=True, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def composed(sqlite_url: str, clock: FakeClock) -> Iterator[Composed]:
    built = compose(demo_settings(sqlite_url), clock=clock)
    yield built
    built.store.dispose()


@pytest.fixture
def client(composed: Composed) -> Iterator[TestClient]:
    with TestClient(composed.app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``procplan server --demo`` on a fresh SQLite file, shared by a test module."""
    db = tmp_path_factory.mktemp("live") / "live.db"
    with ServerProcess(["--demo", "--database", str(db)]) as server:
        yield server.url
