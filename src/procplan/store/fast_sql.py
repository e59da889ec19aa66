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

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError, NoResultFound
from sqlalchemy.sql.elements import ClauseElement

__all__ = ["execute", "execute_many", "rows", "rows_on", "scalar"]

Params = Mapping[str, Any]


class _Compiled(NamedTuple):
    sql: str
    # Each positional parameter: (the caller's name, the index in its list for an expanded
    # ``IN``, else None).
    names: tuple[tuple[str, int | None], ...]
    defaults: dict[str, Any]

    def values(self, params: Params | None) -> tuple[Any, ...]:
        given, defaults = params or {}, self.defaults
        return tuple(
            (given[name] if name in given else defaults[name]) if at is None else given[name][at]
            for name, at in self.names
        )


_Key = tuple[ClauseElement, tuple[str, ...] | None, tuple[int, ...]]
_COMPILED: dict[_Key, _Compiled] = {}
_CAP = 1024


def _compiled(dialect: Dialect, statement: ClauseElement, params: Params | None) -> _Compiled:
    """Compiled once per shape: an INSERT for the columns it is given (as SQLAlchemy does per
    call, with the table's scalar Python defaults for the others it must fill), an expanding
    ``IN`` for its list's length, literal-execute constants rendered as parameters."""
    given = params or {}
    keys = tuple(sorted(given)) if getattr(statement, "is_insert", False) else None
    lengths = tuple(len(v) for v in given.values() if isinstance(v, list | tuple))
    found = _COMPILED.get((statement, keys, lengths))
    if found is None:
        if len(_COMPILED) >= _CAP:  # statements are module constants; this only bounds a misuse
            _COMPILED.clear()
        found = _COMPILED[(statement, keys, lengths)] = _compile(dialect, statement, given, keys)
    return found


def _compile(
    dialect: Dialect, statement: ClauseElement, given: Params, keys: tuple[str, ...] | None
) -> _Compiled:
    done: Any = statement.compile(dialect=dialect, column_keys=list(keys or ()) or None)
    defaults = dict(done.params)
    if keys is not None:
        table = statement.table  # type: ignore[attr-defined]
        for name in done.positiontup or ():
            default = table.c[name].default if name in table.c else None
            if name not in keys and default is not None and default.is_scalar:
                defaults[name] = default.arg
    sql, positions = str(done), tuple(done.positiontup or ())
    expanded_from: dict[str, tuple[str, int]] = {}
    if "POSTCOMPILE" in sql:
        state = done.construct_expanded_state({**defaults, **given})
        for base, expanded in state.parameter_expansion.items():
            expanded_from.update({name: (base, at) for at, name in enumerate(expanded)})
        defaults.update(state.parameters)
        sql, positions = state.statement, tuple(state.positiontup or ())
    order: list[tuple[str, int | None]] = []
    for name in positions:
        base, at = expanded_from.get(name, (name, None))
        # Only the caller's lists are read by index; a constant SQLAlchemy renders late
        # (literal execute) is one of the defaults, under its own name.
        listed = at is not None and isinstance(given.get(base), list | tuple)
        order.append((base, at) if listed else (name, None))
    return _Compiled(sql, tuple(order), defaults)


def _cursor(conn: Connection) -> Any:
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def _wrapped(exc: sqlite3.Error, sql: str, params: Any) -> Exception:
    return DBAPIError.instance(sql, params, exc, sqlite3.Error)


def rows(conn: Connection, statement: ClauseElement, params: Params | None = None) -> list[Any]:
    """Every row of ``statement`` (plain tuples on SQLite)."""
    if conn.dialect.name != "sqlite":
        return list(conn.execute(statement, dict(params or {})))  # type: ignore[call-overload]
    return rows_on(conn.connection.driver_connection, conn.dialect, statement, params)


def rows_on(
    dbapi: Any, dialect: Dialect, statement: ClauseElement, params: Params | None = None
) -> list[Any]:
    """``rows`` on a SQLite DBAPI connection itself (a pooled one, outside any SQLAlchemy
    transaction: one statement reads one consistent snapshot)."""
    compiled = _compiled(dialect, statement, params)
    values = compiled.values(params)
    try:
        return dbapi.cursor().execute(compiled.sql, values).fetchall()  # type: ignore[no-any-return]
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
    if conn.dialect.name != "sqlite":
        conn.execute(statement, dict(params or {}))  # type: ignore[call-overload]
        return
    compiled = _compiled(conn.dialect, statement, params)
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
    if conn.dialect.name != "sqlite":
        conn.execute(statement, [dict(p) for p in batch])  # type: ignore[call-overload]
        return
    compiled = _compiled(conn.dialect, statement, batch[0])
    values = [compiled.values(p) for p in batch]
    try:
        _cursor(conn).executemany(compiled.sql, values)
    except sqlite3.Error as exc:
        raise _wrapped(exc, compiled.sql, values) from exc
