"""``procplan backup`` / ``restore`` on PostgreSQL: pg_dump's custom format and a replay in
one psql transaction (ADR 0018). Runs in a database of its own (other sessions on the
suite's shared database would, rightly, make restore refuse).

Needs ``PROCPLAN_TEST_PG_URL`` and PostgreSQL's client programs (pg_dump, pg_restore, psql).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.conftest import missing_dependency

from procplan import dbadmin
from procplan.config import Settings
from procplan.core.bookings import BookingLimits
from procplan.core.model import BookingRequest
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.store.backup import ServerRunning
from procplan.store.engine import Store, make_engine
from procplan.store.leader import CycleLock
from procplan.store.migrate import upgrade
from procplan.store.pg_backup import ToolMissing, find_tool
from procplan.store.revisions import shipped
from procplan.testing import FakeClock

pytestmark = pytest.mark.postgres

NOW = 1_795_428_000
HOUR = 3600


@pytest.fixture
def own_pg_url(pg_url: str) -> Iterator[str]:
    """A fresh database of this test's own on the suite's PostgreSQL server."""
    try:
        for tool in ("pg_dump", "pg_restore", "psql"):
            find_tool(tool)
    except ToolMissing as exc:
        missing_dependency(str(exc))
    name = f"procplan_backup_{os.getpid()}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def book(store: Store, hour: int) -> int:
    service = BookingService(store, FakeClock(NOW), BookingLimits())
    start = NOW + hour * HOUR
    req = BookingRequest("node-a", start, start + HOUR, "ada", "t", gpu_ids=("node-a-gpu0",))
    return service.create(req, whole_hours=False).id


def booking_ids(url: str) -> set[int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT id FROM bookings")).scalars())
    finally:
        engine.dispose()


def test_pg_dump_backup_and_restore(own_pg_url: str, tmp_path: Path) -> None:
    settings = Settings(db_url=own_pg_url)
    store = Store(make_engine(own_pg_url))
    upgrade(store)
    BookingService(store, FakeClock(NOW), BookingLimits()).replace_topology(demo_topology())
    kept = book(store, 1)
    done = dbadmin.backup(settings, tmp_path / "pg.dump")
    assert done.revision == shipped().head and done.size_bytes > 0
    later = book(store, 2)

    leader = CycleLock(store)  # a running server: refused, nothing changed
    assert leader.try_acquire()
    with pytest.raises(ServerRunning, match="server is running"):
        dbadmin.restore(settings, tmp_path / "pg.dump")
    leader.release()
    store.dispose()  # (a released lock's connection went back to the pool, still locked)
    store = Store(make_engine(own_pg_url))
    with store.read() as conn:  # an open session of any program: refused
        conn.execute(sa.text("SELECT 1"))
        with pytest.raises(ServerRunning, match="other session"):
            dbadmin.restore(settings, tmp_path / "pg.dump")
    store.dispose()
    assert booking_ids(own_pg_url) == {kept, later}

    restored = dbadmin.restore(settings, tmp_path / "pg.dump")
    assert (restored.revision, restored.upgraded_to) == (shipped().head, shipped().head)
    assert booking_ids(own_pg_url) == {kept}
    store = Store(make_engine(own_pg_url))
    try:
        assert book(store, 3) > kept  # sequences came back too; the constraint is in place
        with pytest.raises(sa.exc.IntegrityError, match="claims_no_overlap"), store.write() as c:
            c.execute(sa.text("UPDATE claims SET start_s = start_s - 7200, end_s = end_s + 7200"))
    finally:
        store.dispose()


def test_pg_restore_of_an_older_schema_drops_newer_tables_and_upgrades(
    own_pg_url: str, tmp_path: Path
) -> None:
    settings = Settings(db_url=own_pg_url)
    store = Store(make_engine(own_pg_url))
    upgrade(store, "0003")
    store.dispose()
    dbadmin.backup(settings, tmp_path / "old.dump")
    store = Store(make_engine(own_pg_url))
    upgrade(store)
    BookingService(store, FakeClock(NOW), BookingLimits()).replace_topology(demo_topology())
    book(store, 1)
    store.dispose()

    restored = dbadmin.restore(settings, tmp_path / "old.dump")

    assert (restored.revision, restored.upgraded_to) == ("0003", shipped().head)
    assert booking_ids(own_pg_url) == set()
