"""A SQLite database and its companion files are readable by the server's user only.

The database holds every booking, job, command line and log, so it must not be readable by other
local users (DESIGN.md: secrets never in world-readable files). SQLite creates a database file
with mode 0644 minus the umask, and gives the ``-wal``, ``-shm`` and ``-journal`` files it makes
later exactly the database file's mode (whatever the umask). So the store creates the database
file itself, 0600, before SQLite opens it, and the companions follow; no process-wide umask is
changed (that would race with other threads). Files left looser by an older version or another
tool are tightened at start, with one warning, and never stop the server.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

LOG = logging.getLogger("procplan.store")

PRIVATE_MODE = 0o600
SQLITE_SUFFIXES = ("-wal", "-shm", "-journal")  # SQLite makes them beside the real file
LOCK_SUFFIXES = ("-writelock", "-cycle.lock")  # Store (ADR 0003) and CycleLock, beside the path


def sqlite_database_path(url: str) -> Path | None:
    """The file behind a SQLite URL; None for an in-memory database or a ``file:`` URI
    (SQLite parses those itself: their files are left as SQLite makes them)."""
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("uri"):
        return None
    return Path(database)


def secure_sqlite_files(database: Path) -> list[Path]:
    """Create ``database`` 0600 when it does not exist yet, and take group and other access
    away from it and its companions where they have it; returns the files tightened."""
    _create_private(database)
    real = Path(os.path.realpath(database))  # a symlinked database: SQLite follows it
    files = [real, *(Path(f"{real}{suffix}") for suffix in SQLITE_SUFFIXES)]
    files += [Path(f"{database}{suffix}") for suffix in LOCK_SUFFIXES]
    tightened = [path for path in dict.fromkeys(files) if _tighten(path)]
    if tightened:
        LOG.warning(
            "%s: readable by other users; took group and other access away",
            ", ".join(str(path) for path in tightened),
        )
    return tightened


def _create_private(path: Path) -> None:
    """Create an empty file (an empty SQLite database) with mode 0600: ``O_EXCL`` never opens
    what someone else put there, and the umask can only take bits away from 0600. Any failure
    is left to SQLite, which reports it on connect as it always did."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        os.close(os.open(path, flags, PRIVATE_MODE))
    except OSError:
        return


def _tighten(path: Path) -> bool:
    """Drop group and other permissions of ``path``; True when it had some. Works on the open
    descriptor (never follows a symlink, never blocks on a FIFO); a file it cannot change is
    reported and left alone."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return False
    except OSError as exc:
        LOG.warning("cannot check the permissions of %s: %s", path, exc.strerror or exc)
        return False
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if not mode & 0o077:
            return False
        os.fchmod(fd, mode & 0o700)
        return True
    except OSError as exc:
        LOG.warning("%s is readable by others and cannot be made private: %s", path, exc.strerror)
        return False
    finally:
        os.close(fd)
