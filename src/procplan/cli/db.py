"""``procplan db upgrade|current``, ``procplan backup FILE``, ``procplan restore FILE``.

Unlike the other client commands these open the database itself (see ``procplan.dbadmin``):
they take the server's database options (``--db-url``, ``--database``, ``--settings``, and
the same ``PROCPLAN_*`` variables), so they find the database the server uses.
``procplan.config`` and ``procplan.dbadmin`` are imported lazily, as ``serve`` does, so that
loading the CLI never loads SQLAlchemy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from procplan.cli.common import fail, warn
from procplan.core.errors import DomainError

if TYPE_CHECKING:
    from procplan.config import Settings

app = typer.Typer(help="The database schema: current revision, upgrade.", no_args_is_help=True)

DbUrlOption = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL (default: as `procplan server`)")
]
DatabaseOption = Annotated[Path | None, typer.Option(help="SQLite database file")]
SettingsOption = Annotated[Path | None, typer.Option(help="Settings file (TOML)")]
EXIT_SETTINGS = 2


def _settings(db_url: str | None, database: Path | None, settings: Path | None) -> Settings:
    from procplan.config import Settings

    given: dict[str, Any] = {"db_url": db_url, "database": database, "settings_file": settings}
    try:
        return Settings(**{key: value for key, value in given.items() if value is not None})
    except ValueError as exc:
        fail(f"invalid settings: {exc}", EXIT_SETTINGS)


@app.command("current")
def db_current(
    db_url: DbUrlOption = None, database: DatabaseOption = None, settings: SettingsOption = None
) -> None:
    """Show the database's schema revision and how many migrations a start would run."""
    from procplan import dbadmin

    try:
        state = dbadmin.schema_state(_settings(db_url, database, settings))
    except DomainError as exc:
        fail(exc.message)
    typer.echo(f"database: {state.database}")
    typer.echo(f"revision: {state.revision or 'none (empty database)'}")
    typer.echo(f"newest:   {state.head}")
    if state.pending:
        typer.echo(f"{state.pending} migration(s) pending: `procplan db upgrade` or a server start")
    else:
        typer.echo("up to date")


@app.command("upgrade")
def db_upgrade(
    db_url: DbUrlOption = None, database: DatabaseOption = None, settings: SettingsOption = None
) -> None:
    """Migrate the database to this version's schema (what a server start does first)."""
    from procplan import dbadmin

    try:
        before, after = dbadmin.upgrade_schema(_settings(db_url, database, settings))
    except DomainError as exc:
        fail(exc.message)
    if before.revision == after.revision:
        typer.echo(f"{after.database}: already at {after.revision}")
    else:
        typer.echo(f"{after.database}: {before.revision or 'empty'} -> {after.revision}")


def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the copy")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists")] = False,
    db_url: DbUrlOption = None,
    database: DatabaseOption = None,
    settings: SettingsOption = None,
) -> None:
    """Copy the database to FILE while the server keeps running.

    A consistent copy as of the moment it starts (SQLite: the online backup API;
    PostgreSQL: pg_dump --format=custom).
    """
    from procplan import dbadmin

    try:
        done = dbadmin.backup(_settings(db_url, database, settings), file, overwrite=force)
    except DomainError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"cannot write {file}: {exc.strerror or exc}")
    size_mb = done.size_bytes / 1e6
    typer.echo(
        f"backup written: {done.path} ({size_mb:.1f} MB, schema {done.revision}, "
        f"{done.seconds:.1f} s)"
    )


def restore(
    file: Annotated[Path, typer.Argument(help="A file written by `procplan backup`")],
    db_url: DbUrlOption = None,
    database: DatabaseOption = None,
    settings: SettingsOption = None,
) -> None:
    """Replace the database with a backup (the server must be stopped).

    Refused while a server uses the database. The backup is migrated to this version's
    schema; the previous SQLite file is kept beside the database.
    """
    from procplan import dbadmin

    began = time.monotonic()
    try:
        done = dbadmin.restore(_settings(db_url, database, settings), file)
    except DomainError as exc:
        fail(exc.message)
    except OSError as exc:
        fail(f"restore failed: {exc.strerror or exc}")
    typer.echo(
        f"restored {file} into {done.database} (schema {done.revision}, now {done.upgraded_to}) "
        f"in {time.monotonic() - began:.1f} s"
    )
    if done.kept is not None:
        warn(f"the previous database is kept as {done.kept}")
