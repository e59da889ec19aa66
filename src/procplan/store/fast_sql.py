"""The write path's hot statements on SQLite, run on the DBAPI cursor, compiled once.

SQLAlchemy Core costs about 50 µs of Python per ``Connection.execute`` on this project's CI
machine (execution context, parameter processing, result wrapping) where the statement itself
takes a few: under ProcPlan 1.0's write mix that was a fifth of the server's CPU, all of it
in the one writer thread every booking waits for (issue #18, ADR 0025). Here a statement built
once at import is compiled once per dialect and run on the transaction's own DBAPI connection
(same transaction, same savepoints), with its parameters in the compiled order. Results are
plain tuples. Only statements whose parameters and results need no type processing belong
here: integers, strings, booleans (SQLite stores them as 0/1 either way), no expanding ``IN``.
Errors come back as SQLAlchemy's own exceptions, so callers catch what they always caught.

On PostgreSQL the same calls go through SQLAlchemy unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, NoResultFound
from sqlalchemy.sql.elements import ClauseElement

__all__ = ["execute", "execute_many", "rows", "scalar"]

Params = Mapping[str, Any]


class _Compiled(NamedTuple):
    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    fast: bool  # False: SQLAlchemy must render it per call (the caller falls back to it)

    def values(self, params: Params | None) -> tuple[Any, ...]:
        given = params or {}
        return tuple(given[n] if n in given else self.defaults[n] for n in self.names)


_COMPILED: dict[tuple[ClauseElement, tuple[str, ...] | None], _Compiled] = {}


def _compiled(conn: Connection, statement: ClauseElement, params: Params | None) -> _Compiled:
    """An INSERT is compiled for the columns it is given (as SQLAlchemy does per call), with
    the table's scalar Python defaults for the others it must fill."""
    keys = tuple(sorted(params or {})) if getattr(statement, "is_insert", False) else None
    found = _COMPILED.get((statement, keys))
    if found is None:
        done = statement.compile(dialect=conn.dialect, column_keys=list(keys or ()) or None)
        names = tuple(getattr(done, "positiontup", None) or ())
        defaults = dict(done.params)
        if keys is not None:
            table = statement.table  # type: ignore[attr-defined]
            for name in names:
                default = table.c[name].default if name in table.c else None
                if name not in keys and default is not None and default.is_scalar:
                    defaults[name] = default.arg
        sql = str(done)
        fast = "POSTCOMPILE" not in sql  # expanding or literal-execute parameters: not here
        found = _COMPILED[(statement, keys)] = _Compiled(sql, names, defaults, fast)
    return found


def _cursor(conn: Connection) -> Any:
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def _wrapped(exc: sqlite3.Error, sql: str, params: Any) -> Exception:
    return DBAPIError.instance(sql, params, exc, sqlite3.Error)


def rows(conn: Connection, statement: ClauseElement, params: Params | None = None) -> list[Any]:
    """Every row of ``statement`` (plain tuples on SQLite)."""
    if conn.dialect.name != "sqlite" or not (compiled := _compiled(conn, statement, params)).fast:
        return list(conn.execute(statement, dict(params or {})))  # type: ignore[call-overload]
    values = compiled.values(params)
    try:
        return _cursor(conn).execute(compiled.sql, values).fetchall()  # type: ignore[no-any-return]
    except sqlite3.Error as exc:
        raise _wrapped(exc, compiled.sql, values) from exc


def scalar(conn: Connection, statement: ClauseElement, params: Params | None = None) -> Any:
    """The single value of a statement that returns exactly one row."""
    found = rows(conn, statement, params)
    if len(found) != 1:
        raise NoResultFound(f"expected one row, got {len(found)}")
    return found[0][0]


def execute(conn: Connection, statement: ClauseElement, params: Params | None = None) -> None:
    """Run a statement that returns nothing."""
    if conn.dialect.name != "sqlite" or not (compiled := _compiled(conn, statement, params)).fast:
        conn.execute(statement, dict(params or {}))  # type: ignore[call-overload]
        return
    values = compiled.values(params)
    try:
        _cursor(conn).execute(compiled.sql, values)
    except sqlite3.Error as exc:
        raise _wrapped(exc, compiled.sql, values) from exc


def execute_many(conn: Connection, statement: ClauseElement, many: Iterable[Params]) -> None:
    """Run a statement once per parameter set (an INSERT of several rows)."""
    batch: Sequence[Params] = list(many)
    if not batch:
        return
    sqlite = conn.dialect.name == "sqlite"
    if not sqlite or not (compiled := _compiled(conn, statement, batch[0])).fast:
        conn.execute(statement, [dict(p) for p in batch])  # type: ignore[call-overload]
        return
    values = [compiled.values(p) for p in batch]
    try:
        _cursor(conn).executemany(compiled.sql, values)
    except sqlite3.Error as exc:
        raise _wrapped(exc, compiled.sql, values) from exc
