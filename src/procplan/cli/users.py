"""``procplan user``: the server's accounts (admins), issue #12.

A user has a role (``admin`` or ``user``), optionally a Unix login the server maps local
connections to, and optionally a password for ``procplan login`` and the web sign-in.
Removing a user disables them and revokes their tokens and sessions; their bookings and jobs
stay, since the calendar's history is not theirs alone. Passwords come from stdin
(``--password-stdin``), never from arguments, which every local user can read in ``ps``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from procplan.cli.common import (
    FormatOption,
    OutputFormat,
    UrlOption,
    connect,
    fail,
    output_format,
    print_rows,
    read_stdin_line,
    usage_error,
)
from procplan.cli.format import short_time
from procplan.present import capped, cell, joined, terminal_text

app = typer.Typer(help="Users: roles, Unix logins, passwords (admins).", no_args_is_help=True)

Payload = Mapping[str, Any]
NameArg = Annotated[str, typer.Argument(help="User name")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw answer")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Set a password, read from stdin (one line)")
]


class RoleChoice(StrEnum):
    admin = "admin"
    user = "user"


def _yes(value: object) -> str:
    return "yes" if value else "no"


def users_table(users: Sequence[Payload]) -> Table:
    table = Table(title="Users", title_justify="left")
    for column in ("USER", "ROLE", "UNIX USER", "PASSWORD", "STATE", "MANAGES", "CREATED"):
        table.add_column(column)
    for user in users:
        table.add_row(
            cell(user.get("name") or ""),
            cell(user.get("role") or ""),
            cell(user.get("unix_user") or ""),
            _yes(user.get("has_password")),
            "disabled" if user.get("disabled") else "active",
            cell(joined(user.get("manages") or []), limit=None),
            short_time(user.get("created_at")),
        )
    return table


def detail_lines(user: Payload) -> list[str]:
    """``Key: value`` lines of one account, whole values, sanitised."""
    rows = [
        ("User", str(user.get("name") or "")),
        ("Role", str(user.get("role") or "")),
        ("Unix user", str(user.get("unix_user") or "(none)")),
        ("Password", "set" if user.get("has_password") else "none"),
        ("State", "disabled" if user.get("disabled") else "active"),
        ("Manages", ", ".join(str(t) for t in user.get("manages") or []) or "(none)"),
        ("Created", short_time(user.get("created_at"))),
    ]
    return [f"{key}: {terminal_text(value)}" for key, value in rows if value]


@app.command()
def add(
    name: NameArg,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an admin")] = False,
    unix_user: Annotated[
        str | None,
        typer.Option("--unix-user", help="Unix login whose local connections are this user"),
    ] = None,
    password_stdin: PasswordStdin = False,
    url: UrlOption = None,
) -> None:
    """Add a user (a plain user unless --admin)."""
    password = read_stdin_line("--password-stdin") if password_stdin else None
    role = RoleChoice.admin if admin else RoleChoice.user
    with connect(url) as client:
        made = client.accounts.add_user(name, role.value, unix_user, password)
    typer.echo(f"Added user {capped(made.get('name') or name)} ({capped(made.get('role'))})")


@app.command("list")
def list_users(as_json: JsonOpt = False, fmt: FormatOption = None, url: UrlOption = None) -> None:
    """Every user with role, Unix login, password and state."""
    as_json = output_format(as_json, fmt) is OutputFormat.JSON
    with connect(url, raw=as_json) as client:
        rows = client.accounts.users().get("users") or []
    print_rows(rows, as_json, "No users.", users_table, fmt)


@app.command()
def show(name: NameArg, as_json: JsonOpt = False, url: UrlOption = None) -> None:
    """One user (yourself, or anyone as an admin)."""
    with connect(url, raw=as_json) as client:
        user = client.accounts.user(name)
    if as_json:
        typer.echo(json.dumps(user, indent=2))
        return
    typer.echo("\n".join(detail_lines(user)))


@app.command("set")
def set_user(
    name: NameArg,
    role: Annotated[RoleChoice | None, typer.Option(help="New role")] = None,
    unix_user: Annotated[
        str | None, typer.Option("--unix-user", help="Map this Unix login to the user")
    ] = None,
    no_unix_user: Annotated[
        bool, typer.Option("--no-unix-user", help="Remove the Unix login mapping")
    ] = False,
    password_stdin: PasswordStdin = False,
    disabled: Annotated[
        bool | None,
        typer.Option("--disable/--enable", help="Refuse or allow the user's sign-ins"),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Change a user (admins; anyone may change their own password); prints the result."""
    if unix_user is not None and no_unix_user:
        usage_error("give either --unix-user or --no-unix-user", "--unix-user / --no-unix-user")
    changes: dict[str, Any] = {}
    if role is not None:
        changes["role"] = role.value
    if unix_user is not None or no_unix_user:
        changes["unix_user"] = unix_user
    if disabled is not None:
        changes["disabled"] = disabled
    if password_stdin:
        changes["password"] = read_stdin_line("--password-stdin")
    if not changes:
        usage_error(
            "nothing to change: give --role, --unix-user, --no-unix-user, --password-stdin, "
            "--disable or --enable"
        )
    with connect(url) as client:
        user = client.accounts.update_user(name, changes)
    typer.echo("\n".join(detail_lines(user)))


@app.command()
def remove(name: NameArg, url: UrlOption = None) -> None:
    """Disable a user and revoke their tokens and sessions (bookings and jobs stay)."""
    with connect(url) as client:
        user = client.accounts.remove_user(name)
    typer.echo(
        f"Removed user {capped(user.get('name') or name)}: disabled, tokens and sessions "
        "revoked; bookings and jobs kept"
    )


@app.command("login-link")
def login_link(name: NameArg, url: UrlOption = None) -> None:
    """Print a one-time web sign-in link for a user (valid for a few minutes)."""
    with connect(url) as client:
        answer = client.accounts.login_link(name)
    link = answer.get("url")
    if not isinstance(link, str) or not link:
        fail("error: the server sent no link")
    typer.echo(link)
