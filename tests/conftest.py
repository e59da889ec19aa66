"""Shared fixtures: databases (SQLite file, PostgreSQL), in-process apps, a live server.

Tests that need PostgreSQL or Chromium skip with a reason when it is missing, unless
``PROCPLAN_REQUIRE_ALL=1`` (CI), which turns such a skip into a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from procplan.config import Settings
from procplan.server import Composed, compose
from procplan.testing import FakeClock

REQUIRE_ALL = os.environ.get("PROCPLAN_REQUIRE_ALL") == "1"
# Monday 2026-11-23 10:00 UTC: a fixed "now" for in-process tests.
FIXED_NOW = 1_795_428_000


def missing_dependency(reason: str) -> None:
    """Skip locally, fail in CI (PROCPLAN_REQUIRE_ALL=1)."""
    if REQUIRE_ALL:
        pytest.fail(f"required test dependency missing: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'procplan.db'}"


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


def demo_settings(db_url: str, **overrides: object) -> Settings:
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


def wait_for_health(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not become healthy in {timeout}s")


def start_server(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start ``procplan server ARGS`` in a subprocess on a free port; return (url, process)."""
    port = free_port()
    cmd = [sys.executable, "-m", "procplan.cli.main", "server", "--port", str(port), *args]
    proc = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, proc)
    except RuntimeError:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise RuntimeError(err.decode(errors="replace")) from None
    return url, proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``procplan server --demo`` on a fresh SQLite file, shared by a test module."""
    db = tmp_path_factory.mktemp("live") / "live.db"
    url, proc = start_server(["--demo", "--database", str(db)])
    yield url
    stop_server(proc)
