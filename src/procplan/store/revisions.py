"""Which schema revision a database is at, and which revisions this ProcPlan knows.

``procplan db current``, ``backup`` and ``restore`` ask before they act: a file whose
revision this version does not ship was written by a newer ProcPlan (or is not a ProcPlan
database at all), and restoring or upgrading it would at best fail half-way.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from procplan.core.errors import DomainError
from procplan.store.migrate import alembic_config

VERSION_TABLE = "alembic_version"  # Alembic's default, as ``migrations/env.py`` leaves it


class NotProcPlanDatabase(DomainError):
    """The file or database is not a ProcPlan database at a revision this version knows."""

    status = 400
    default_code = "not_a_procplan_database"


@dataclass(frozen=True, slots=True)
class Revisions:
    """The shipped migrations: ``known`` oldest first, ``head`` the newest."""

    known: tuple[str, ...]

    @property
    def head(self) -> str:
        return self.known[-1]

    def behind(self, revision: str) -> int:
        """How many migrations an upgrade from ``revision`` to head runs."""
        return len(self.known) - 1 - self.known.index(revision)


def shipped() -> Revisions:
    """The revisions in ``store/migrations/versions``, oldest first (one linear history)."""
    script = ScriptDirectory.from_config(alembic_config())
    newest_first = [rev.revision for rev in script.walk_revisions()]
    return Revisions(tuple(reversed(newest_first)))


def current(conn: Connection) -> str | None:
    """The revision of the database behind ``conn``; None for an empty database."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def sqlite_revision(conn: sqlite3.Connection) -> str | None:
    """The same on a plain ``sqlite3`` connection (backup and restore use the sqlite3
    module directly); raises ``NotProcPlanDatabase`` for a file that is not SQLite."""
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VERSION_TABLE,)
        ).fetchone()
        if found is None:
            return None
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except sqlite3.DatabaseError as exc:
        raise NotProcPlanDatabase(f"not a SQLite database: {exc}") from exc
    return None if row is None else str(row[0])


def require_known(revision: str | None, what: str, revisions: Revisions) -> str:
    """``revision`` when this version ships it; otherwise a message that says what to do."""
    if revision is None:
        raise NotProcPlanDatabase(f"{what} is not a ProcPlan database (no schema revision)")
    if revision not in revisions.known:
        raise NotProcPlanDatabase(
            f"{what} is at schema revision {revision}, which this ProcPlan does not know "
            f"(newest known: {revisions.head}); use the ProcPlan version that wrote it"
        )
    return revision
