"""Engines and transactions: SQLite (WAL, busy_timeout, foreign keys) or PostgreSQL.

Writes that check the ledger and then insert run in ``Store.write()``: on SQLite that is
``BEGIN IMMEDIATE`` (the write lock is taken before the check, so two processes on one file
cannot both pass it); on PostgreSQL the caller takes a transaction-scoped advisory lock and
the exclusion constraint on ``claims`` backs it up.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, Executable, create_engine, event
from sqlalchemy.exc import NoResultFound, OperationalError

from procplan.core.errors import DomainError
from procplan.store import fast_sql
from procplan.store.file_modes import secure_sqlite_files, sqlite_database_path

_WRITE_OPTION = "procplan_write"
_SECRET_QUERY_WORDS = ("pass", "secret", "token")  # ?password=, ?sslpassword=, …
_PEEK_OPTION = "procplan_peek"


class StoreUnavailable(DomainError):
    """The database could not be reached or stayed locked past the busy timeout."""

    status = 503
    default_code = "store_unavailable"


def make_engine(
    url: str, *, busy_timeout_ms: int = 10_000, synchronous: str = "FULL", pool_size: int = 8
) -> Engine:
    """Create an engine with the project's connection settings for the URL's dialect."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, busy_timeout_ms, synchronous, pool_size)
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_engine(url: str, busy_timeout_ms: int, synchronous: str, pool_size: int) -> Engine:
    in_memory = url in ("sqlite://", "sqlite:///:memory:")
    database = sqlite_database_path(url)
    if database is not None:
        secure_sqlite_files(database)  # before SQLite creates the file 0644 (and its -wal, -shm)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if not in_memory:
        kwargs.update(pool_size=pool_size, max_overflow=pool_size)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(_PEEK_OPTION):
            return  # Store.peek(): one statement in SQLite's autocommit mode
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITE_OPTION) else "BEGIN")

    return engine


def display_url(url: URL) -> str:
    """The URL as logs and messages may show it: no password, neither in the user part nor in
    a query parameter (psycopg takes ``?password=`` too, and ``hide_password`` misses it)."""
    query = {
        key: "redacted" if any(word in key.lower() for word in _SECRET_QUERY_WORDS) else value
        for key, value in url.query.items()
    }
    return url.set(query=query).render_as_string(hide_password=True)


class Store:
    """Owns the engine and hands out read and write transactions."""

    def __init__(self, engine: Engine, busy_timeout_s: float = 10.0) -> None:
        self.engine = engine
        self.busy_timeout_s = busy_timeout_s
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time. Writers queue on a thread lock and, across
        # processes, on an flock of a sidecar file, instead of in SQLite's busy handler, which
        # polls with sleeps of up to 100 ms and made p99 latency seconds under load.
        # busy_timeout still covers writers that do not take these locks (other tools).
        self._local_writer = threading.Lock() if self.is_sqlite else None
        database = engine.url.database if self.is_sqlite else None
        self._lock_path = (
            Path(f"{database}-writelock") if database and database != ":memory:" else None
        )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: a consistent snapshot, never blocking writers (WAL / MVCC)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"database unavailable: {exc.orig}") from exc

    def peek(self, statement: Executable) -> Any:
        """The single value of a one-row, one-statement read, without BEGIN/COMMIT.

        Used for the version counters checked before every view: a statement is atomic on
        its own, and skipping the transaction halves the cost of the check.
        """
        if self.is_sqlite:
            rows = self.read_rows(statement)
            if len(rows) != 1:
                raise NoResultFound(f"peek expected one row, got {len(rows)}")
            return rows[0][0]
        try:
            with self.engine.connect() as raw:
                return raw.execution_options(**{_PEEK_OPTION: True}).execute(statement).scalar_one()
        except OperationalError as exc:
            raise StoreUnavailable(f"database unavailable: {exc.orig}") from exc

    def read_rows(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """The rows of one read statement, one consistent snapshot. On SQLite through a pooled
        DBAPI connection with the statement compiled once (``fast_sql``): a fifth of the
        cost of a SQLAlchemy read transaction (issue #18: the version probes and the mirror's
        catch-up after each write ran before every request)."""
        if not self.is_sqlite:
            with self.read() as conn:
                return list(conn.execute(statement, dict(params or {})))
        raw = self.engine.raw_connection()
        try:
            return fast_sql.rows_on(raw.driver_connection, self.engine.dialect, statement, params)  # type: ignore[arg-type]
        except OperationalError as exc:
            raise StoreUnavailable(f"database unavailable: {exc.orig}") from exc
        finally:
            raw.close()  # back to the pool

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that holds the write lock from its first statement (SQLite)."""
        try:
            with self._writer_gate(), self.engine.connect() as raw:
                conn = raw.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"database busy or unavailable: {exc.orig}") from exc

    def _writer_gate(self) -> AbstractContextManager[object]:
        if self._local_writer is None:
            return nullcontext()
        return _WriterGate(self._local_writer, self._lock_path, self.busy_timeout_s)

    def dispose(self) -> None:
        self.engine.dispose()


class _WriterGate:
    """Thread lock, then an exclusive ``flock`` on the sidecar file (when there is a file).

    Both waits are bounded by the busy timeout: a stuck writer makes the others answer 503
    (``StoreUnavailable``) instead of hanging. The file lock is polled without blocking, with
    sleeps growing from 0.2 ms to 1 ms, so a freed lock is taken within a millisecond.
    """

    def __init__(self, lock: threading.Lock, path: Path | None, timeout_s: float) -> None:
        self._lock = lock
        self._path = path
        self._timeout_s = timeout_s
        self._fd: int | None = None

    def __enter__(self) -> _WriterGate:
        deadline = time.monotonic() + self._timeout_s
        if not self._lock.acquire(timeout=self._timeout_s):
            raise StoreUnavailable("database busy: another write did not finish in time")
        try:
            if self._path is not None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
                _flock_until(self._fd, deadline)
        except BaseException:
            self._release_file()
            self._lock.release()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self._release_file()
        self._lock.release()

    def _release_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _flock_until(fd: int, deadline: float) -> None:
    pause = 0.0002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreUnavailable(
                    "database busy: another process's write did not finish in time"
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.001)
