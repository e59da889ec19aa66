"""The SQLite database, its ``-wal``/``-shm`` companions and the store's lock files are created
0600 and its data directory 0700 whatever the umask; looser files from before are tightened on
start with one warning (DESIGN.md: secrets never in world-readable files)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from procplan.config import Settings
from procplan.store.engine import Store, make_engine
from procplan.store.file_modes import sqlite_database_path
from procplan.store.leader import CycleLock
from procplan.store.migrate import upgrade

FILES = ("", "-wal", "-shm", "-writelock", "-cycle.lock")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """A permissive umask for the test (restored after it)."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def open_store(db: Path) -> Store:
    """A migrated store with a write committed: SQLite has made its -wal and -shm, and the
    writer gate its lock file; they exist while the pooled connection stays open."""
    store = Store(make_engine(f"sqlite:///{db}"))
    upgrade(store)
    return store


def test_database_and_companions_are_created_private(tmp_path: Path, umask: int) -> None:
    db = tmp_path / "procplan.db"
    store = open_store(db)
    lock = CycleLock(store)
    try:
        assert lock.try_acquire()
        modes = {suffix: mode(Path(f"{db}{suffix}")) for suffix in FILES}
        assert modes == dict.fromkeys(FILES, 0o600)
    finally:
        lock.release()
        store.dispose()


def test_the_data_directory_is_created_private(tmp_path: Path, umask: int) -> None:
    settings = Settings(database=tmp_path / "data" / "procplan" / "procplan.db")
    url = settings.resolved_db_url()
    assert mode(tmp_path / "data") == 0o700  # missing parents too: nobody can swap the dir
    assert mode(tmp_path / "data" / "procplan") == 0o700
    store = open_store(Path(url.removeprefix("sqlite:///")))
    store.dispose()
    assert mode(tmp_path / "data" / "procplan" / "procplan.db") == 0o600


def test_an_existing_data_directory_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    Settings(database=shared / "procplan.db").resolved_db_url()
    assert mode(shared) == 0o755


def test_loose_files_are_tightened_once_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "old.db"
    open_store(db).dispose()
    loose = [db, Path(f"{db}-writelock"), Path(f"{db}-wal")]
    loose[2].write_bytes(b"")  # a -wal left behind by a crash
    for path in loose:
        path.chmod(0o644)
    caplog.set_level(logging.WARNING, logger="procplan.store")

    store = open_store(db)
    try:
        assert [mode(path) for path in loose] == [0o600, 0o600, 0o600]
    finally:
        store.dispose()
    warnings = [r for r in caplog.records if r.name == "procplan.store"]
    assert len(warnings) == 1
    assert all(str(path) in warnings[0].getMessage() for path in loose)

    caplog.clear()
    open_store(db).dispose()  # the next start has nothing to say
    assert [r for r in caplog.records if r.name == "procplan.store"] == []


def test_a_symlinked_companion_is_not_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    target.chmod(0o644)
    db = tmp_path / "x.db"
    Path(f"{db}-shm").symlink_to(target)
    caplog.set_level(logging.WARNING, logger="procplan.store")
    engine = make_engine(f"sqlite:///{db}")  # no connection yet: only the files are checked
    engine.dispose()
    assert mode(target) == 0o644
    assert any("-shm" in r.getMessage() for r in caplog.records)


def test_a_symlinked_database_is_tightened_at_its_target(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = tmp_path / "real.db"
    open_store(real).dispose()
    real.chmod(0o644)
    link = tmp_path / "link.db"
    link.symlink_to(real)
    caplog.set_level(logging.WARNING, logger="procplan.store")
    open_store(link).dispose()
    assert mode(real) == 0o600
    assert [r.getMessage() for r in caplog.records] == [
        f"{real}: readable by other users; took group and other access away"
    ]


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///file:mem?mode=memory&uri=true", None),
        ("sqlite:////var/lib/procplan.db", Path("/var/lib/procplan.db")),
    ],
)
def test_which_urls_name_a_file(url: str, path: Path | None) -> None:
    assert sqlite_database_path(url) == path
