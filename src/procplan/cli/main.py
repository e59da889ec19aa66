"""``procplan``: the native command line (Typer + Rich).

This module only assembles the app; commands live in ``bookings``, ``jobs``, ``run``,
``tenants``, ``views``, ``accounts`` (login, logout, whoami, audit), ``users`` and ``tokens``
(HTTP clients of a running server) and ``serve`` (the one command that starts a server).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from procplan.cli import (
    accounts,
    bookings,
    jobs,
    node_admin,
    nodes,
    notify,
    run,
    sim,
    tenants,
    tokens,
    usage,
    users,
    views,
)
from procplan.cli import agent as agent_cli
from procplan.cli import db as db_cli
from procplan.cli.serve import start_server

app = typer.Typer(
    name="procplan",
    help="Book, run and watch shared GPUs. Client commands talk to a ProcPlan server (--url).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# ``run`` and ``submit`` stop parsing options at the command: its own options stay its own
# (``procplan run python train.py --lr 3``), with or without ``--``.
COMMAND_LINE = {"allow_interspersed_args": False}

app.command()(bookings.book)
app.command()(bookings.bookings)
app.command()(bookings.release)
app.command()(bookings.keep)
app.command()(bookings.extend)
app.command(context_settings=COMMAND_LINE)(run.run)
app.command(context_settings=COMMAND_LINE)(jobs.submit)
app.command()(jobs.queue)
app.command()(jobs.sprio)
app.command()(jobs.job)
app.command()(jobs.cancel)
app.add_typer(tenants.app, name="tenant")
app.command()(views.calendar)
app.command("agent")(agent_cli.agent)
app.command()(nodes.nodes)
app.command()(nodes.logs)
app.command()(nodes.top)
app.add_typer(node_admin.app, name="node")  # drain, resume, remove, list (ADR 0020)
app.command()(accounts.login)
app.command()(accounts.logout)
app.command()(accounts.whoami)
app.add_typer(users.app, name="user")
app.add_typer(tokens.app, name="token")
app.add_typer(notify.app, name="notify")
app.command()(accounts.audit)
app.command()(usage.report)
app.command()(usage.history)
app.command()(sim.sim)
app.add_typer(db_cli.app, name="db")
app.command()(db_cli.backup)
app.command()(db_cli.restore)


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
