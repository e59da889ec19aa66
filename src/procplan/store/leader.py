"""The cycle lock: exactly one process per cluster runs the scheduling cycle.

SQLite: an exclusive ``flock`` on ``<db>-cycle.lock`` (every process sharing the file sees it;
the kernel drops it when the holder dies). PostgreSQL: a session-level advisory lock held on a
dedicated connection (the server drops it when that connection ends). Processes that do not
hold it only serve requests and try again now and then, so a dead leader is replaced.

A leader that dies (``kill -9``, a crash) closes its socket and PostgreSQL ends the session at
once. A leader whose host vanishes (power, network) sends nothing: PostgreSQL would only notice
at the kernel's TCP keepalive, two hours by default, and no other server could lead until then.
So the lock's session asks for keepalives of its own (``LOCK_KEEPALIVES``: the session ends
about 11 s after the leader's host stops answering; ADR 0021). Safety never rests on the lock:
every start is re-checked in its transaction and PostgreSQL's exclusion constraints refuse
overlapping claims, so two servers that both believe they lead cannot claim a GPU twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from procplan.store.engine import Store

_PG_LOCK_KEY = (2, 1)  # (class, object) of the advisory lock; class 1 is the per-node lock
LEADER_LOCK_KEY = _PG_LOCK_KEY  # restore checks that no server holds it (store.pg_backup)
LOCK_KEEPALIVES = {
    "tcp_keepalives_idle": 5,
    "tcp_keepalives_interval": 2,
    "tcp_keepalives_count": 3,
}
"""Server-side TCP keepalives of the lock's session, in seconds and probes (PostgreSQL ignores
them on a Unix socket, where a vanished peer cannot happen)."""


class CycleLock:
    """``try_acquire()`` until it returns True; then hold until ``release()``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._fd: int | None = None
        self._conn: Connection | None = None
        self._held = False
        database = store.engine.url.database if store.is_sqlite else None
        self._path = Path(f"{database}-cycle.lock") if database and database != ":memory:" else None

    @property
    def held(self) -> bool:
        return self._held

    def try_acquire(self) -> bool:
        """Take the lock if free (never blocks); True when this process holds it."""
        if self._held:
            return self._still_held()
        if self._store.is_sqlite:
            self._held = self._flock()
        else:
            self._held = self._advisory_lock()
        return self._held

    def _flock(self) -> bool:
        if self._path is None:
            return True  # an in-memory database has exactly one process
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _advisory_lock(self) -> bool:
        conn = self._store.engine.connect()
        try:
            for name, value in LOCK_KEEPALIVES.items():
                conn.execute(text("SELECT set_config(:n, :v, false)"), {"n": name, "v": str(value)})
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:a, :b)"),
                {"a": _PG_LOCK_KEY[0], "b": _PG_LOCK_KEY[1]},
            ).scalar_one()
            conn.commit()
        except DBAPIError:
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def _still_held(self) -> bool:
        """PostgreSQL: the lock lives as long as its connection; check that it does."""
        if self._conn is None:
            return True
        try:
            self._conn.execute(text("SELECT 1")).scalar_one()
            self._conn.commit()
        except DBAPIError:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            # Invalidated, not returned to the pool: the session (and the advisory lock it
            # holds) must end, or another server could not take the lock while it idles there.
            with contextlib.suppress(DBAPIError):  # the connection may already be gone
                self._conn.invalidate()
                self._conn.close()
            self._conn = None
        self._held = False
