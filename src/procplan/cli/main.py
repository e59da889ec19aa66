"""``procplan``: the native command line (Typer + Rich).

This module only assembles the app; commands live in ``bookings`` (and ``booking_edit``,
``weekly``, ``feeds``), ``jobs``, ``run``,
``tenants``, ``views``, ``accounts`` (login, logout, whoami, audit), ``users`` and ``tokens``
(HTTP clients of a running server) and ``serve`` (the one command that starts a server).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup
from typer.models import CommandInfo

from procplan.cli.durations import ZONE_ENV, set_display_zone

if TYPE_CHECKING:  # Typer's own copy of Click
    from typer._click.core import Command, Context

# ``run`` and ``submit`` stop parsing options at the command: its own options stay its own
# (``procplan run python train.py --lr 3``), with or without ``--``.
COMMAND_LINE = {"allow_interspersed_args": False}

# Every command, in help order: its name → (module of ``procplan.cli``, attribute, context
# settings). A module is imported only when its command runs (or help lists it), so that
# ``procplan bookings`` does not pay for the simulator, the agent or Rich tables at start-up.
LAZY: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "book": ("bookings", "book", None),
    "bookings": ("bookings", "bookings", None),
    "release": ("bookings", "release", None),
    "keep": ("bookings", "keep", None),
    "extend": ("bookings", "extend", None),
    "edit": ("booking_edit", "edit", None),  # move, resize, GPUs, label, priority (ADR 0024)
    "feed": ("feeds", "app", None),  # calendar feeds: new, revoke (ADR 0022)
    "run": ("run", "run", COMMAND_LINE),
    "submit": ("jobs", "submit", COMMAND_LINE),
    "queue": ("jobs", "queue", None),
    "sprio": ("jobs", "sprio", None),
    "job": ("jobs", "job", None),
    "cancel": ("jobs", "cancel", None),
    "tenant": ("tenants", "app", None),
    "calendar": ("views", "calendar", None),
    "agent": ("agent", "agent", None),
    "nodes": ("nodes", "nodes", None),
    "logs": ("nodes", "logs", None),
    "top": ("nodes", "top", None),
    "node": ("node_admin", "app", None),  # drain, resume, remove, list (ADR 0020)
    "login": ("accounts", "login", None),
    "logout": ("accounts", "logout", None),
    "whoami": ("accounts", "whoami", None),
    "user": ("users", "app", None),
    "token": ("tokens", "app", None),
    "notify": ("notify", "app", None),
    "audit": ("accounts", "audit", None),
    "report": ("usage", "report", None),
    "history": ("usage", "history", None),
    "sim": ("sim", "sim", None),
    "db": ("db", "app", None),
    "backup": ("db", "backup", None),
    "restore": ("db", "restore", None),
}


def load_command(name: str) -> Command:
    """The Click command ``name`` of ``LAZY``, built from its module on first use."""
    module_name, attribute, settings = LAZY[name]
    target = getattr(importlib.import_module(f"procplan.cli.{module_name}"), attribute)
    if isinstance(target, typer.Typer):
        group = typer.main.get_group(target)
        group.name = name
        return group
    info = CommandInfo(name=name, callback=target, context_settings=settings)
    return typer.main.get_command_from_info(
        info,
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


class LazyGroup(TyperGroup):
    """The ``procplan`` group: the commands of ``LAZY`` load when asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*LAZY, *(name for name in super().list_commands(ctx) if name not in LAZY)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY:
            command = self.commands[cmd_name] = load_command(cmd_name)
        return command


app = typer.Typer(
    name="procplan",
    cls=LazyGroup,
    help="Book, run and watch shared GPUs. Client commands talk to a ProcPlan server (--url).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz",
            metavar="ZONE",
            help="Time zone of the times you type and see, e.g. Europe/Berlin or UTC "
            "(default: $PROCPLAN_TZ, else this machine's zone)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Book, run and watch shared GPUs. Client commands talk to a ProcPlan server (--url)."""
    try:
        set_display_zone(tz)
    except ValueError as exc:
        if tz:
            raise typer.BadParameter(str(exc), param_hint="--tz") from None
        # a bad $PROCPLAN_TZ must not stop `procplan server` or an agent: say so, go on
        typer.echo(f"warning: {exc} (${ZONE_ENV}); using this machine's zone", err=True)
        set_display_zone(None, use_env=False)


def _text(path: Path | None) -> str | None:
    return str(path) if path is not None else None


@app.command()
def server(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: 127.0.0.1)", show_default=False)
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default: 8080)", show_default=False)
    ] = None,
    db_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL, e.g. postgresql+psycopg://...")
    ] = None,
    database: Annotated[Path | None, typer.Option(help="SQLite database file")] = None,
    config: Annotated[Path | None, typer.Option(help="ProcPlan JSON topology file")] = None,
    web_root: Annotated[Path | None, typer.Option(help="Web UI static files directory")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Serve a demo topology (node-a: 4×A100, node-b: 8×H100)")
    ] = False,
    settings: Annotated[Path | None, typer.Option(help="Settings file (TOML)")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Server processes sharing the port and database (default: 1)"),
    ] = None,
    agent_token: Annotated[
        str | None,
        typer.Option(
            help="Token node agents must present (`procplan agent --token`); also "
            "PROCPLAN_AGENT_TOKEN. Without one, only this server's own agent reports"
        ),
    ] = None,
    local_agent: Annotated[
        bool | None,
        typer.Option(
            "--local-agent/--no-local-agent",
            help="Report this machine's GPUs (default: when there is no --config)",
            show_default=False,
        ),
    ] = None,
    unix_socket: Annotated[
        Path | None,
        typer.Option(help="Also listen on this Unix socket (local users are who the kernel says)"),
    ] = None,
    allow_root_jobs: Annotated[
        bool, typer.Option("--allow-root-jobs", help="Batch jobs may run as root")
    ] = False,
    root_path: Annotated[
        str | None,
        typer.Option(
            help="Path prefix a reverse proxy serves ProcPlan under, e.g. /procplan "
            "(pages, API and /docs then live at https://host/procplan/)"
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this certificate (PEM)")
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="The HTTPS certificate's private key (PEM)")
    ] = None,
) -> None:
    """Run a ProcPlan server (options override PROCPLAN_* variables and the settings file)."""
    from procplan.cli.serve import start_server

    code = start_server(
        {
            "host": host,
            "port": port,
            "db_url": db_url,
            "database": _text(database),
            "config": _text(config),
            "web_root": _text(web_root),
            "demo": True if demo else None,
            "settings_file": _text(settings),
            "workers": workers,
            "agent_token": agent_token,
            "local_agent": None if local_agent is None else ("auto" if local_agent else "off"),
            "unix_socket": _text(unix_socket),
            "allow_root_jobs": True if allow_root_jobs else None,
            "root_path": root_path,
            "ssl_certfile": _text(ssl_certfile),
            "ssl_keyfile": _text(ssl_keyfile),
        }
    )
    if code:
        raise typer.Exit(code)


if __name__ == "__main__":
    app()
