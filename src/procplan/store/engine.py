"""Engines and transactions: SQLite (WAL, busy_timeout, foreign keys) or PostgreSQL.

Writes that check the ledger and then insert run in ``Store.write()``: on SQLite that is
``BEGIN IMMEDIATE`` (the write lock is taken before the check, so two processes on one file
cannot both pass it); on PostgreSQL the caller takes a transaction-scoped advisory lock and
the exclusion constraint on ``claims`` backs it up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError

from procplan.core.errors import DomainError

_WRITE_OPTION = "procplan_write"


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
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Store:
    """Owns the engine and hands out read and write transactions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

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

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction that holds the write lock from its first statement (SQLite)."""
        try:
            with self.engine.connect() as raw:
                conn = raw.execution_options(**{_WRITE_OPTION: True})
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"database busy or unavailable: {exc.orig}") from exc

    def dispose(self) -> None:
        self.engine.dispose()
