"""``procplan token``: API tokens, for scripts, CI and machines that are not the server's host.

A token proves who you are (``Authorization: Bearer``; ``$PROCPLAN_TOKEN`` or
``procplan login --token-stdin``). Its secret exists once, in the answer that creates it, so
``token create`` prints it alone on stdout, for ``$(...)`` and pipes; everything else it says
goes to stderr. Lists show ids, labels and dates, never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
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
    usage_error,
    utc_now,
    warn,
)
from procplan.cli.durations import display_zone, parse_duration, parse_instant
from procplan.cli.format import short_time
from procplan.client import format_time
from procplan.present import capped, cell

app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)

Payload = Mapping[str, Any]
SECRET_KEYS = ("token", "secret")  # never printed by a list, even if a server sent them


def parse_expiry(text: str, now: datetime) -> tuple[str | None, int | None]:
    """``--expires``: a duration from now (``30d``, ``12h``) as ``expires_in_s``, or an
    instant (ISO 8601, local time unless it has a zone) as ``expires_at``."""
    try:
        return None, int(parse_duration(text).total_seconds())
    except ValueError:
        pass
    if text.strip().lower() == "now":
        usage_error("a token that expires now is no token", "--expires")
    try:
        return format_time(parse_instant(text, now, display_zone())), None
    except ValueError:
        usage_error(
            f"invalid --expires {text!r}: use a duration like 30d or 12h, or a time like "
            "2027-01-01T00:00",
            "--expires",
        )


def token_state(token: Payload, now: datetime) -> str:
    if token.get("revoked"):
        return "revoked"
    expires = token.get("expires_at")
    if isinstance(expires, str):
        try:
            if datetime.fromisoformat(expires) <= now:
                return "expired"
        except ValueError:
            pass
    return "active"


def tokens_table(tokens: Sequence[Payload], now: datetime) -> Table:
    table = Table(title="Tokens", title_justify="left")
    for column in ("ID", "USER", "KIND", "NAME", "CREATED", "EXPIRES", "STATE"):
        table.add_column(column)
    for token in tokens:
        table.add_row(
            cell(token.get("id", "")),
            cell(token.get("user") or ""),
            cell(token.get("kind") or ""),
            cell(token.get("name") or ""),
            short_time(token.get("created_at")),
            short_time(token.get("expires_at")) or "never",
            token_state(token, now),
        )
    return table


@app.command()
def create(
    user: Annotated[
        str | None, typer.Option(help="For this user (admins; default: yourself)")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="A label to recognise it by, e.g. 'ci' or a host name")
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(metavar="30d|2027-01-01T00:00", help="When it stops working (default: never)"),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Create an API token and print it alone on stdout (it is shown this once)."""
    expires_at, expires_in_s = parse_expiry(expires, utc_now()) if expires else (None, None)
    with connect(url) as client:
        made = client.accounts.create_token(user, name, expires_at, expires_in_s)
    secret = made.get("token")
    if not isinstance(secret, str) or not secret:
        fail("error: the server sent no token")
    until = short_time(made.get("expires_at")) or "never"
    warn(
        f"Created token {capped(made.get('id'))} for {capped(made.get('user'))} "
        f"(expires: {until}); it is shown only now"
    )
    typer.echo(secret)


@app.command("list")
def list_tokens(
    user: Annotated[
        str | None, typer.Option(help="Only this user's (admins; default: yours, or all)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw list")] = False,
    fmt: FormatOption = None,
    url: UrlOption = None,
) -> None:
    """Your tokens and sign-in sessions (an admin's: everyone's); never their secrets."""
    as_json = output_format(as_json, fmt) is OutputFormat.JSON
    with connect(url, raw=as_json) as client:
        rows = client.accounts.tokens(user).get("tokens") or []
    rows = [
        {k: v for k, v in row.items() if k not in SECRET_KEYS}
        for row in rows
        if isinstance(row, dict)
    ]
    print_rows(rows, as_json, "No tokens.", lambda listed: tokens_table(listed, utc_now()), fmt)


@app.command()
def revoke(
    token_id: Annotated[int, typer.Argument(min=1, help="Token id (from `procplan token list`)")],
    url: UrlOption = None,
) -> None:
    """Revoke a token or session: it stops working at once."""
    with connect(url) as client:
        made = client.accounts.revoke_token(token_id)
    typer.echo(f"Revoked token {capped(made.get('id', token_id))} of {capped(made.get('user'))}")
