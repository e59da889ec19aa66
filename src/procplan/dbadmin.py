"""Database operations for the command line: schema revision, upgrade, backup, restore.

Like ``server.py`` this is a composition root: it turns ``Settings`` into the same database
URL and engine the server would open and calls the store's operations, so ``procplan db``,
``procplan backup`` and ``procplan restore`` act on exactly the database ``procplan server``
with the same options, environment and settings file uses. They talk to the database, not to
a server: a backup must work whatever state the server is in, and a restore needs it stopped.
``cli/db.py`` imports this module lazily, the one client-side module allowed to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from procplan.config import Settings
from procplan.core.errors import DomainError, NotFound
from procplan.store.backup import BackupResult, backup_sqlite, restore_sqlite
from procplan.store.engine import Store, display_url, make_engine
from procplan.store.file_modes import sqlite_database_path
from procplan.store.migrate import upgrade
from procplan.store.pg_backup import backup_postgres, restore_postgres
from procplan.store.revisions import current, shipped


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database stands: ``revision`` None for an empty one."""

    database: str  # the URL as messages may show it (no password)
    revision: str | None
    head: str

    @property
    def pending(self) -> int:
        """How many migrations ``procplan db upgrade`` (or a server start) would run."""
        known = shipped()
        if self.revision is None:
            return len(known.known)
        if self.revision not in known.known:
            return 0
        return known.behind(self.revision)


@dataclass(frozen=True, slots=True)
class Restored:
    database: str
    revision: str  # the backup's
    upgraded_to: str
    kept: Path | None  # the previous SQLite file, kept beside the database


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL, an in-memory or a URI database)."""
    return sqlite_database_path(url) if url.startswith("sqlite") else None


def _copyable_sqlite_file(url: str, verb: str) -> Path | None:
    """The SQLite file a backup or restore works on; ``None`` for PostgreSQL."""
    if not url.startswith("sqlite"):
        return None
    path = _sqlite_file(url)
    if path is None:
        raise DomainError(f"an in-memory or URI SQLite database cannot be {verb}")
    return path


@contextmanager
def _opened(settings: Settings, *, must_exist: bool = True) -> Iterator[Store]:
    url = settings.resolved_db_url()
    path = _sqlite_file(url)
    if must_exist and path is not None and not path.exists():
        raise NotFound(f"no database at {path} (a server creates it on first start)")
    store = Store(
        make_engine(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms, pool_size=1),
        busy_timeout_s=settings.sqlite_busy_timeout_ms / 1000,
    )
    try:
        yield store
    finally:
        store.dispose()


def schema_state(settings: Settings) -> SchemaState:
    """``procplan db current``."""
    with _opened(settings) as store, store.read() as conn:
        return SchemaState(display_url(store.engine.url), current(conn), shipped().head)


def upgrade_schema(settings: Settings) -> tuple[SchemaState, SchemaState]:
    """``procplan db upgrade``: what a server start does first (the same locked migration),
    without starting one. Returns the state before and after."""
    with _opened(settings, must_exist=False) as store:
        with store.read() as conn:
            before = SchemaState(display_url(store.engine.url), current(conn), shipped().head)
        upgrade(store)
        with store.read() as conn:
            after = SchemaState(before.database, current(conn), before.head)
    return before, after


def backup(
    settings: Settings,
    target: Path,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BackupResult:
    """``procplan backup FILE``: a consistent copy while servers keep serving."""
    url = settings.resolved_db_url()
    path = _copyable_sqlite_file(url, "backed up")
    target = target.expanduser().absolute()
    if path is not None:
        return backup_sqlite(path, target, shipped(), overwrite=overwrite, progress=progress)
    with _opened(settings) as store:
        return backup_postgres(store, url, target, shipped(), overwrite=overwrite)


def restore(settings: Settings, source: Path) -> Restored:
    """``procplan restore FILE``: replace the database with a backup (refused while a server
    is live), then migrate it to this version's schema as a server start would."""
    url = settings.resolved_db_url()
    path = _copyable_sqlite_file(url, "restored")
    source = source.expanduser().absolute()
    if path is not None:
        result = restore_sqlite(source, path, shipped())
    else:
        with _opened(settings) as store:
            result = restore_postgres(store, url, source, shipped())
    with _opened(settings) as store:
        upgrade(store)
        with store.read() as conn:
            now = current(conn) or "none"
        shown = display_url(store.engine.url)
    return Restored(shown, result.revision, now, result.kept)
