"""Users are created on first use by any write that names one (booking, job, membership)."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from procplan.core.timeutil import Instant
from procplan.store.tables import users

USER_PK = select(users.c.pk).where(users.c.name == bindparam("name"))


def find_user_pk(conn: Connection, name: str) -> int | None:
    """The user's key, or ``None`` for a name never seen (reads create nobody)."""
    pk = conn.execute(USER_PK, {"name": name}).scalar()
    return None if pk is None else int(pk)


def user_pk(conn: Connection, name: str, now: Instant, known: dict[str, int]) -> int:
    """The user's key, creating the user on first use (race-free on both dialects).

    ``known`` remembers keys of users that were already committed when first looked up
    (users are never deleted or renamed), which saves a statement inside the write lock.
    A user created in this transaction is not remembered: the transaction may yet roll back.
    """
    cached = known.get(name)
    if cached is not None:
        return cached
    pk = find_user_pk(conn, name)
    if pk is not None:
        known[name] = pk
        return pk
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    conn.execute(dialect_insert(users).values(name=name, created_at=now).on_conflict_do_nothing())
    return int(conn.execute(USER_PK, {"name": name}).scalar_one())
