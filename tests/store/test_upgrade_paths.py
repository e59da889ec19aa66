"""Upgrades from every schema revision this ProcPlan ships, with data in the database (issue
#16 item 4): the rows survive, the schema equals a fresh one, and the store works on it.

The databases come from ``tests/store/data/make_fixtures.py`` (built once per session: a
small cluster in use, written with plain SQL at each revision). This test found that
migration 0004 failed on any SQLite database whose users owned bookings (a batch copy
dropped ``users`` under ``foreign_keys=ON``).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from procplan.core.bookings import BookingLimits
from procplan.core.errors import Conflict
from procplan.core.jobs import JobState
from procplan.core.model import BookingRequest, Priority
from procplan.service.bookings import BookingService
from procplan.store.engine import Store, make_engine
from procplan.store.jobs_repo import JobStore
from procplan.store.migrate import upgrade
from procplan.store.revisions import current, shipped
from procplan.store.tables import metadata
from procplan.testing import FakeClock

HOUR = 3600
REVISIONS = list(shipped().known)  # the newest too: an upgrade that has nothing to do


def _load_builder() -> ModuleType:
    path = Path(__file__).parent / "data" / "make_fixtures.py"
    spec = importlib.util.spec_from_file_location("procplan_schema_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIXTURES = _load_builder()
NOW: int = FIXTURES.NOW


@pytest.fixture(scope="session")
def fixture_dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("schema-fixtures")
    return {rev: FIXTURES.build(out / f"procplan-{rev}.sqlite", rev) for rev in REVISIONS}


@pytest.fixture(params=REVISIONS)
def upgraded(
    request: pytest.FixtureRequest, fixture_dbs: dict[str, Path], tmp_path: Path
) -> Iterator[tuple[str, Store]]:
    revision: str = request.param
    path = tmp_path / "procplan.db"
    shutil.copy(fixture_dbs[revision], path)
    store = Store(make_engine(f"sqlite:///{path}"))
    upgrade(store)
    yield revision, store
    store.dispose()


def _count(store: Store, table: str) -> int:
    with store.read() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _tables_at(revision: str) -> set[str]:
    """The tables a database at ``revision`` had (from its fixture's own build)."""
    return {name for name, since in _SINCE.items() if since <= revision}


_SINCE = {
    **dict.fromkeys(("nodes", "gpus", "users", "bookings", "claims"), "0001"),
    **dict.fromkeys(("tenants", "memberships", "jobs"), "0002"),
    **dict.fromkeys(("node_status", "gpu_history", "job_logs", "job_log_heads"), "0003"),
    **dict.fromkeys(("credentials", "audit"), "0004"),
    **dict.fromkeys(("notify_channels", "outbox", "notify_deliveries"), "0008"),
}


def test_every_revision_upgrades_to_the_same_schema(upgraded: tuple[str, Store]) -> None:
    _, store = upgraded
    with store.engine.connect() as conn:
        assert current(conn) == shipped().head
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_rows_survive_every_upgrade(upgraded: tuple[str, Store]) -> None:
    revision, store = upgraded
    for table in sorted(_tables_at(revision) - {"claims"}):
        expected = len(FIXTURES.ROWS[table]) + (1 if table == "tenants" else 0)  # + "default"
        assert _count(store, table) == expected, table

    bookings = BookingService(store, FakeClock(NOW), BookingLimits())
    active, done, cancelled = (bookings.get(i) for i in (1, 2, 3))
    assert (active.user, active.gpu_ids, active.status) == ("alice", ("n1-g0", "n1-g1"), "active")
    assert (active.start, active.end, active.priority) == (
        NOW + HOUR,
        NOW + 3 * HOUR,
        Priority.MEDIUM,
    )
    assert (done.user, done.gpu_ids, done.status) == ("bob", ("n2-g0",), "completed")
    assert (cancelled.gpu_ids, cancelled.status) == (("n1-g2",), "cancelled")
    if revision >= "0002":
        jobs = JobStore(store, bookings.bookings.mirror)
        running, pending, finished = (jobs.get(i) for i in (1, 2, 3))
        assert running is not None and pending is not None and finished is not None
        assert (running.state, running.gpu_ids, running.user) == (
            JobState.RUNNING,
            ("n1-g3",),
            "alice",
        )
        assert pending.state is JobState.PENDING and pending.gpu_ids == ()
        assert (finished.state, finished.exit_code) == (JobState.COMPLETED, 0)


def test_the_store_books_on_an_upgraded_database(upgraded: tuple[str, Store]) -> None:
    _, store = upgraded
    bookings = BookingService(store, FakeClock(NOW), BookingLimits())
    made = bookings.create(
        BookingRequest("n1", NOW + 4 * HOUR, NOW + 5 * HOUR, "alice", "next", gpu_ids=("n1-g0",)),
        whole_hours=False,
    )
    assert bookings.get(made.id).gpu_ids == ("n1-g0",)
    assert made.id > 3
    with pytest.raises(Conflict):  # the upgraded booking 1 still holds n1-g1
        bookings.create(
            BookingRequest("n1", NOW + 2 * HOUR, NOW + 4 * HOUR, "bob", "x", gpu_ids=("n1-g1",)),
            whole_hours=False,
        )
