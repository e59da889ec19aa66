"""Online backup and offline restore of a SQLite database (issue #16, ADR 0018).

Backup runs while servers keep serving. It opens its own connection, starts a read
transaction and copies the pages with SQLite's online backup API, a few megabytes per step.
The read transaction stays open from the first step to the last, so every step reads the
same WAL snapshot: the copy is exactly the database as of the moment the transaction began
(every write acknowledged before that is in it), and writers are never blocked, because in
WAL mode a reader does not hold them up. (Without that transaction SQLite restarts a stepped
backup whenever another connection writes, which under steady booking load is forever.)

Restore replaces the database while no server uses it. ``procplan restore`` refuses when a
server is live: every server process competes for the cycle lock (``<db>-cycle.lock``,
``store.leader``) and keeps pooled connections open, so the restore must be able to take
that lock *and* switch the database out of WAL mode, which SQLite allows only to the sole
connection. The new file is staged beside the old one, checked, and renamed over it (atomic:
a reader sees the old or the new database, never a mix); the old one is kept under a
``.before-restore-<time>`` name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from procplan.core.errors import Conflict
from procplan.store.file_modes import PRIVATE_MODE
from procplan.store.revisions import NotProcPlanDatabase, Revisions, require_known, sqlite_revision

STEP_PAGES = 2048  # pages per backup step: 8 MiB at SQLite's default 4 KiB page
FLUSH_CACHE_KIB = 4096  # the copy's page cache: what may be written between two flushes
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class ServerRunning(Conflict):
    """A server (or another program) has the database open: restore refuses."""

    default_code = "server_running"


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: Path
    revision: str
    size_bytes: int
    seconds: float


@dataclass(frozen=True, slots=True)
class RestoreResult:
    revision: str
    kept: Path | None  # the previous database, renamed; None when there was none


# ---- backup -------------------------------------------------------------------------------


def backup_sqlite(
    database: Path,
    target: Path,
    revisions: Revisions,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BackupResult:
    """Copy ``database`` to ``target`` (mode 0600, a single file in rollback-journal mode)
    while servers keep using it. ``progress(remaining, total)`` is called after each step."""
    began = time.monotonic()
    if not database.is_file():
        raise NotProcPlanDatabase(f"no database at {database}")
    if target.exists() and not overwrite:
        raise Conflict(f"{target} exists; remove it or pass --force")
    source = _connect(database, "rw")
    staged = _private_temp(target, "partial")
    try:
        source.execute("BEGIN")  # the snapshot: held until the last page is copied
        revision = require_known(sqlite_revision(source), str(database), revisions)
        with _flushed_copy(staged) as (copy, flush):

            def step(_status: int, remaining: int, total: int) -> None:
                flush()
                if progress is not None:
                    progress(remaining, total)

            source.backup(copy, pages=STEP_PAGES, progress=step)
        source.execute("COMMIT")
        if not overwrite and target.exists():
            raise Conflict(f"{target} appeared during the backup; not overwritten")
        os.replace(staged, target)
        _fsync_dir(target.parent)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    return BackupResult(target, revision, target.stat().st_size, time.monotonic() - began)


@contextlib.contextmanager
def _flushed_copy(staged: Path) -> Iterator[tuple[sqlite3.Connection, Callable[[], None]]]:
    """The destination connection, and ``flush()`` that writes what it holds to disk.

    Written through a small page cache, without a journal (a failed backup deletes the file
    anyway), and flushed after every step: dirty pages never pile up. A copy flushed only at
    the end (SQLite's own commit) wrote hundreds of megabytes at once, and on ext4 the
    server's next commit (its WAL fsync) waited for all of it: half-second stalls of every
    booking (bench/backup.py). The last fsync finds little left to write.
    """
    copy = sqlite3.connect(staged, isolation_level=None)
    fd = os.open(staged, os.O_RDONLY | os.O_CLOEXEC)
    try:
        copy.execute("PRAGMA journal_mode=OFF")
        copy.execute("PRAGMA synchronous=OFF")
        copy.execute(f"PRAGMA cache_size=-{FLUSH_CACHE_KIB}")
        yield copy, lambda: os.fdatasync(fd)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
        os.fsync(fd)
    finally:
        os.close(fd)
        copy.close()


# ---- restore ------------------------------------------------------------------------------


def restore_sqlite(source: Path, database: Path, revisions: Revisions) -> RestoreResult:
    """Replace ``database`` with the backup ``source`` (not upgraded here: the caller
    migrates it with the usual locks). Raises ``ServerRunning`` while anything has the
    database open, ``NotProcPlanDatabase`` for a file that is not a known ProcPlan backup."""
    if not source.is_file():
        raise NotProcPlanDatabase(f"no backup file at {source}")
    with _cycle_and_write_locks(database):
        staged = _private_temp(database, "restoring")
        try:
            revision = _stage(source, staged, revisions)  # a bad file changes nothing
            if database.exists():
                _refuse_if_open(database)
            kept = _swap(staged, database)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
    return RestoreResult(revision, kept)


def _stage(source: Path, staged: Path, revisions: Revisions) -> str:
    """Copy the backup next to the database and check it: SQLite, intact, known revision."""
    reader = _connect(source, "ro")
    try:
        revision = require_known(sqlite_revision(reader), str(source), revisions)
        copy = sqlite3.connect(staged, isolation_level=None)
        try:
            reader.backup(copy)
            problems = copy.execute("PRAGMA quick_check").fetchall()
            if problems != [("ok",)]:
                raise NotProcPlanDatabase(f"{source} is damaged: {problems[:3]}")
            copy.execute("PRAGMA journal_mode=DELETE")
        finally:
            copy.close()
    finally:
        reader.close()
    _fsync(staged)
    return revision


def _swap(staged: Path, database: Path) -> Path | None:
    """Keep the old database under a new name (a hard link: the path never goes missing),
    then rename the staged copy over it."""
    kept: Path | None = None
    if database.exists():
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        kept = database.with_name(f"{database.name}.before-restore-{stamp}")
        for attempt in range(2, 100):  # two restores within one second keep both
            if not kept.exists():
                break
            kept = database.with_name(f"{database.name}.before-restore-{stamp}-{attempt}")
        os.link(database, kept)
    os.replace(staged, database)
    for suffix in SQLITE_COMPANIONS:  # the old file's; empty after _refuse_if_open
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    _fsync_dir(database.parent)
    return kept


def _refuse_if_open(database: Path) -> None:
    """Checkpoint the WAL into the file (the kept copy must hold every commit) and leave WAL
    mode, which succeeds only for the sole connection: any other process that has the
    database open, a server of any version or a ``sqlite3`` shell, makes it fail."""
    conn = _connect(database, "rw", busy_timeout_ms=500)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()
    except sqlite3.OperationalError as exc:
        raise ServerRunning(
            f"{database} is open in another process ({exc}); stop the ProcPlan server first"
        ) from exc
    finally:
        conn.close()
    if mode is None or str(mode[0]).lower() != "delete":
        raise ServerRunning(f"{database} is open in another process; stop the server first")


@contextlib.contextmanager
def _cycle_and_write_locks(database: Path) -> Iterator[None]:
    """The locks every server takes (``store.leader``, ``store.engine``): the cycle lock
    without waiting (held: a server is running), then the write lock, waiting briefly."""
    with contextlib.ExitStack() as held:
        held.enter_context(_flock(Path(f"{database}-cycle.lock"), wait_s=0.0))
        held.enter_context(_flock(Path(f"{database}-writelock"), wait_s=10.0))
        yield


@contextlib.contextmanager
def _flock(path: Path, wait_s: float) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_MODE)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ServerRunning(
                        f"a ProcPlan server is running on this database (it holds {path}); "
                        "stop it first"
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)


# ---- files --------------------------------------------------------------------------------


def _connect(path: Path, mode: str, busy_timeout_ms: int = 10_000) -> sqlite3.Connection:
    """A plain sqlite3 connection that never creates a missing file (``mode=ro``/``rw``)."""
    uri = f"{path.resolve().as_uri()}?mode={mode}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError as exc:
        raise NotProcPlanDatabase(f"cannot open {path}: {exc}") from exc
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    return conn


def _private_temp(beside: Path, tag: str) -> Path:
    """A new empty file, 0600, in ``beside``'s directory (so the final rename is atomic)."""
    path = beside.with_name(f".{beside.name}.{tag}-{os.getpid()}")
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_MODE))
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (the directory entry is data too)."""
    with contextlib.suppress(OSError):  # some file systems refuse fsync on a directory
        _fsync(path)
