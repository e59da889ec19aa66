"""Backup and restore of a PostgreSQL database with PostgreSQL's own tools (ADR 0018).

``pg_dump --format=custom`` reads one consistent snapshot (a repeatable-read transaction)
and blocks no writer, so it is the online backup; ProcPlan only finds the tool, passes the
connection (the password in ``PGPASSWORD``, never on a command line that ``ps`` shows) and
checks the result. Restore refuses while a server is live (the cycle lock, the advisory lock
``store.leader`` holds, or any other session on the database), then replays the dump with
``psql --single-transaction``: tables this dump does not have are dropped in the same
transaction, so a failed restore changes nothing and a restored older schema has no newer
tables left over for the upgrade to trip on.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path

from sqlalchemy import Connection, make_url, text

from procplan.core.errors import Conflict, DomainError
from procplan.store.backup import BackupResult, RestoreResult, ServerRunning
from procplan.store.engine import Store
from procplan.store.leader import LEADER_LOCK_KEY
from procplan.store.revisions import Revisions, current, require_known


class ToolMissing(DomainError):
    """A PostgreSQL client program (pg_dump, pg_restore, psql) is not installed."""

    status = 500
    default_code = "tool_missing"


def find_tool(name: str) -> str:
    """``name`` on PATH, else the newest ``/usr/lib/postgresql/<version>/bin/<name>``
    (Debian installs them there; pg_dump must be at least as new as the server)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    if not candidates:
        raise ToolMissing(f"{name} not found; install PostgreSQL's client programs")
    return max(candidates, key=lambda path: _version_key(Path(path).parent.parent.name))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def libpq_target(url: str) -> tuple[str, dict[str, str]]:
    """The libpq connection URI for a SQLAlchemy URL (no driver, no password) and the
    environment that carries the password."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def backup_postgres(
    store: Store, url: str, target: Path, revisions: Revisions, *, overwrite: bool = False
) -> BackupResult:
    """``pg_dump -Fc`` of the database into ``target`` (0600, renamed into place when done)."""
    began = time.monotonic()
    if target.exists() and not overwrite:
        raise Conflict(f"{target} exists; remove it or pass --force")
    with store.read() as conn:
        revision = require_known(current(conn), "the database", revisions)
    dsn, env = libpq_target(url)
    staged = target.with_name(f".{target.name}.partial-{os.getpid()}")
    os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        _run([find_tool("pg_dump"), "--format=custom", f"--file={staged}", f"--dbname={dsn}"], env)
        os.replace(staged, target)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return BackupResult(target, revision, target.stat().st_size, time.monotonic() - began)


def dump_revision(dump: Path) -> str | None:
    """The schema revision recorded in a custom-format dump (its ``alembic_version`` row)."""
    script = _run(
        [find_tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(dump)],
        dict(os.environ),
    )
    lines = script.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and number + 1 < len(lines):
            value = lines[number + 1].strip()
            return None if value == "\\." else value
    return None


def restore_postgres(store: Store, url: str, dump: Path, revisions: Revisions) -> RestoreResult:
    """Replace the database's tables with the dump's, in one transaction (not upgraded here)."""
    if not dump.is_file():
        raise DomainError(f"no backup file at {dump}")
    revision = require_known(dump_revision(dump), str(dump), revisions)
    dsn, env = libpq_target(url)
    with store.engine.connect() as guard:
        _refuse_if_live(guard)  # and hold the leader lock until the replay is done
        try:
            _replay(guard, dump, dsn, env)
        finally:
            guard.execute(
                text("SELECT pg_advisory_unlock(:a, :b)"),
                {"a": LEADER_LOCK_KEY[0], "b": LEADER_LOCK_KEY[1]},
            )
            guard.commit()
    return RestoreResult(revision, None)


def _replay(guard: Connection, dump: Path, dsn: str, env: dict[str, str]) -> None:
    """Drop the tables the dump lacks and replay it, all in one psql transaction."""
    in_dump = _dump_tables(dump)
    drops = [
        f'DROP TABLE IF EXISTS public."{name}" CASCADE;\n'
        for name in _public_tables(guard)
        if name not in in_dump
    ]
    guard.commit()  # no snapshot or lock of ours in the way of psql's DROPs
    script = _run(
        [find_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
         "--file=-", str(dump)],
        env,
    )  # fmt: skip
    _run(
        [find_tool("psql"), "-X", "-q", "--single-transaction", "-v", "ON_ERROR_STOP=1",
         f"--dbname={dsn}"],
        env,
        stdin="".join(drops) + script,
    )  # fmt: skip


def _refuse_if_live(conn: Connection) -> None:
    """Take the leader lock (held: a server runs the cycle) and count other sessions."""
    got = conn.execute(
        text("SELECT pg_try_advisory_lock(:a, :b)"),
        {"a": LEADER_LOCK_KEY[0], "b": LEADER_LOCK_KEY[1]},
    ).scalar_one()
    conn.commit()
    if not got:
        raise ServerRunning("a ProcPlan server is running on this database; stop it first")
    others = conn.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
    ).scalar_one()
    if others:
        conn.execute(
            text("SELECT pg_advisory_unlock(:a, :b)"),
            {"a": LEADER_LOCK_KEY[0], "b": LEADER_LOCK_KEY[1]},
        )
        conn.commit()
        raise ServerRunning(
            f"{others} other session(s) are connected to this database (servers, psql); "
            "stop them first"
        )


def _public_tables(conn: Connection) -> list[str]:
    rows = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    return [str(row[0]) for row in rows]


def _dump_tables(dump: Path) -> set[str]:
    """Table names in the dump's table of contents (``pg_restore --list``)."""
    listing = _run([find_tool("pg_restore"), "--list", str(dump)], dict(os.environ))
    names: set[str] = set()
    for line in listing.splitlines():
        parts = line.split()
        # "<id>; <oid> <oid> TABLE public <name> <owner>"
        if len(parts) >= 6 and parts[3] == "TABLE" and parts[4] == "public":
            names.add(parts[5])
    return names


def _run(argv: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    """Run a PostgreSQL tool; its stderr becomes the error message when it fails."""
    done = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DomainError(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-2000:]}")
    return done.stdout
