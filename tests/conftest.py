"""Shared fixtures: databases (SQLite file, PostgreSQL), in-process apps, a live server.

Tests that need PostgreSQL or Chromium skip with a reason when it is missing, unless
``PROCPLAN_REQUIRE_ALL=1`` (CI), which turns such a skip into a failure.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from procplan.config import Settings
from procplan.core.identity import Role
from procplan.server import Composed, compose
from procplan.store.engine import Store, make_engine
from procplan.store.migrate import upgrade
from procplan.testing import FakeClock, ServerProcess

REQUIRE_ALL = os.environ.get("PROCPLAN_REQUIRE_ALL") == "1"
# starlette's TestClient sends ``Host: testserver``, and a server answers only its own names
# (issue #12): every server the tests build, in-process or not, also answers to that one.
TEST_HOST = "testserver"
os.environ.setdefault("PROCPLAN_ALLOWED_HOSTS", f'["{TEST_HOST}"]')
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Store]:
    """A migrated store, once on SQLite and once on PostgreSQL (no topology yet)."""
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_url")
    opened = Store(make_engine(url))
    upgrade(opened)
    yield opened
    opened.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(FIXED_NOW)


# In-process clients sign in with a token of this admin (acting for others by the
# X-ProcPlan-User header, as admins may); ``signed_in`` makes clients of other users.
TEST_ADMIN = "tester"


def token_for(
    composed: Composed, user: str, role: Role = Role.USER, unix_user: str | None = None
) -> str:
    """A new API token of ``user`` (created with ``role`` unless it exists; ``unix_user``
    maps it to a Unix account, which naming PIDs needs)."""
    if composed.accounts.store.account(user) is None or role is Role.ADMIN or unix_user:
        values: dict[str, object] = {"role": role.value}
        if unix_user:
            values["unix_user"] = unix_user
        composed.accounts.store.save_user(user, FIXED_NOW, **values)
    return composed.accounts.create_token(user, "tests", None)[0]


def signed_in(
    composed: Composed, user: str, role: Role = Role.USER, unix_user: str | None = None
) -> TestClient:
    """A TestClient (not yet entered) of ``user``, by an API token."""
    token = token_for(composed, user, role, unix_user)
    return TestClient(composed.app, headers={"Authorization": f"Bearer {token}"})


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
def composed(
    request: pytest.FixtureRequest, sqlite_url: str, clock: FakeClock
) -> Iterator[Composed]:
    """The demo cluster in process; a test module changes its settings with a module-level
    ``COMPOSE_SETTINGS`` (keyword arguments of ``demo_settings``, e.g. an agent token)."""
    overrides = getattr(request.module, "COMPOSE_SETTINGS", {})
    built = compose(demo_settings(sqlite_url, **overrides), clock=clock)
    yield built
    built.store.dispose()


def admin_client(composed: Composed) -> TestClient:
    """A TestClient (not yet entered) of the admin ``TEST_ADMIN``, whose Unix account is the
    one running the tests (so that it may name the tests' own PIDs to ``/acquire``)."""
    return signed_in(composed, TEST_ADMIN, Role.ADMIN, getpass.getuser())


@pytest.fixture
def client(composed: Composed) -> Iterator[TestClient]:
    """An admin's client (``admin_client``)."""
    with admin_client(composed) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``procplan server --demo`` on a fresh SQLite file, shared by a test module."""
    db = tmp_path_factory.mktemp("live") / "live.db"
    with ServerProcess(["--demo", "--database", str(db)]) as server:
        yield server.url
