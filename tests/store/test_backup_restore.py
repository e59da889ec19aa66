"""``procplan backup`` and ``procplan restore`` on SQLite (issue #16 item 3, ADR 0018).

The backup is the database as of one instant, taken while other connections write; restore
refuses while anything has the database open, checks the file, swaps it in atomically, keeps
the old one, and upgrades an older backup. (Under HTTP booking load:
``tests/api/test_backup_under_load.py``; PostgreSQL: ``test_pg_backup_restore.py``.)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_upgrade_paths import FIXTURES

from procplan import dbadmin
from procplan.config import Settings
from procplan.core.bookings import BookingLimits
from procplan.core.model import BookingRequest
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.store.backup import ServerRunning
from procplan.store.engine import Store, make_engine
from procplan.store.leader import CycleLock
from procplan.store.revisions import NotProcPlanDatabase, shipped
from procplan.testing import FakeClock

NOW = 1_795_428_000
HOUR = 3600


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "procplan.db"


@pytest.fixture
def served(db_path: Path, store: Store) -> Iterator[BookingService]:
    """The ``store`` fixture's database (``sqlite_url`` is ``db_path``) with the demo cluster."""
    service = BookingService(store, FakeClock(NOW), BookingLimits())
    service.replace_topology(demo_topology())
    yield service


def book(service: BookingService, hour: int, gpu: str = "node-a-gpu0") -> int:
    start = NOW + hour * HOUR
    req = BookingRequest("node-a", start, start + HOUR, "ada", "t", gpu_ids=(gpu,))
    return service.create(req, whole_hours=False).id


def ids_in(path: Path) -> set[int]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM bookings")}


def settings(db_path: Path) -> Settings:
    return Settings(database=db_path)


def test_backup_is_one_snapshot_while_writers_commit(
    served: BookingService, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for hour in range(1, 200):
        book(served, hour)
    committed: list[int] = []
    stop = threading.Event()

    def write() -> None:
        hour = 1000
        while not stop.is_set():
            committed.append(book(served, hour, "node-a-gpu1"))
            hour += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 20
        while len(committed) < 5:
            assert time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.005)
        before = set(committed)
        monkeypatch.setattr("procplan.store.backup.STEP_PAGES", 1)  # many steps, writes between
        steps: list[int] = []
        done = dbadmin.backup(
            settings(db_path), tmp_path / "copy.db", progress=lambda r, _t: steps.append(r)
        )
    finally:
        stop.set()
        writer.join()
    assert len(steps) > 10 and steps == sorted(steps, reverse=True)  # never restarted
    copied = ids_in(done.path)
    assert before <= copied  # every write acknowledged before the backup began
    assert copied < ids_in(db_path)  # and those after it are not (one instant)
    assert done.revision == shipped().head
    assert (done.path.stat().st_mode & 0o777) == 0o600
    with sqlite3.connect(done.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)


def test_backup_refuses_to_overwrite_and_to_copy_a_missing_database(
    served: BookingService, db_path: Path, tmp_path: Path
) -> None:
    target = tmp_path / "copy.db"
    target.write_text("keep me")
    with pytest.raises(Exception, match="exists"):
        dbadmin.backup(settings(db_path), target)
    assert target.read_text() == "keep me"
    dbadmin.backup(settings(db_path), target, overwrite=True)
    assert ids_in(target) == set()
    with pytest.raises(Exception, match="no database"):
        dbadmin.backup(settings(tmp_path / "missing.db"), tmp_path / "other.db")
    assert not (tmp_path / "missing.db").exists()


def test_restore_swaps_the_backup_in_and_keeps_the_old_database(
    served: BookingService, store: Store, db_path: Path, tmp_path: Path
) -> None:
    kept_id = book(served, 1)
    dbadmin.backup(settings(db_path), tmp_path / "copy.db")
    later_id = book(served, 2)
    store.dispose()  # the "server" stops

    done = dbadmin.restore(settings(db_path), tmp_path / "copy.db")

    assert ids_in(db_path) == {kept_id}
    assert done.kept is not None and ids_in(done.kept) == {kept_id, later_id}
    assert done.revision == done.upgraded_to == shipped().head
    assert not list(tmp_path.glob(".procplan.db.*"))  # no staged file left behind
    assert (db_path.stat().st_mode & 0o777) == 0o600
    reopened = Store(make_engine(f"sqlite:///{db_path}"))
    try:
        again = BookingService(reopened, FakeClock(NOW), BookingLimits())
        assert again.get(kept_id).gpu_ids == ("node-a-gpu0",)
        assert book(again, 2) > kept_id  # and it takes new bookings
    finally:
        reopened.dispose()


def test_restore_refuses_while_a_server_holds_the_cycle_lock(
    served: BookingService, store: Store, db_path: Path, tmp_path: Path
) -> None:
    dbadmin.backup(settings(db_path), tmp_path / "copy.db")
    leader = CycleLock(store)
    assert leader.try_acquire()
    try:
        with pytest.raises(ServerRunning, match="server is running"):
            dbadmin.restore(settings(db_path), tmp_path / "copy.db")
    finally:
        leader.release()
    # Not the leader, but its pooled connections are open: still refused.
    with store.read() as conn:
        conn.execute(sa.text("SELECT 1"))
    with pytest.raises(ServerRunning, match="open in another process"):
        dbadmin.restore(settings(db_path), tmp_path / "copy.db")
    store.dispose()
    dbadmin.restore(settings(db_path), tmp_path / "copy.db")


def test_restore_upgrades_an_older_backup(tmp_path: Path) -> None:
    old = FIXTURES.build(tmp_path / "old-0003.sqlite", "0003")
    done = dbadmin.restore(settings(tmp_path / "new.db"), old)
    assert (done.revision, done.upgraded_to, done.kept) == ("0003", shipped().head, None)
    assert ids_in(tmp_path / "new.db") == {1, 2, 3}


def test_restore_refuses_files_that_are_not_known_procplan_databases(
    served: BookingService, store: Store, db_path: Path, tmp_path: Path
) -> None:
    store.dispose()
    text = tmp_path / "notes.txt"
    text.write_text("hello " * 1000)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    newer = tmp_path / "newer.db"
    dbadmin.backup(settings(db_path), newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    before = db_path.read_bytes()
    for bad, why in ((text, "not a SQLite"), (empty, "no schema revision"), (newer, "9999")):
        with pytest.raises(NotProcPlanDatabase, match=why):
            dbadmin.restore(settings(db_path), bad)
    assert db_path.read_bytes() == before
    assert not list(tmp_path.glob(".procplan.db.*"))
