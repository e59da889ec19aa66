"""What every ``procplan`` client command shares: the ``--url`` and ``--as`` options, the
client, and one mapping from client failures to a single stderr line and an exit code.

The client proves who we are with ``$PROCPLAN_TOKEN`` or what ``procplan login`` saved, else
the server's host knows us by our Unix user (``procplan.client.auth``). ``--as`` (or
``$PROCPLAN_AS``) asks to act for another user, which only admins may do.

Output hygiene has its choke points here: ``connect`` hands commands a ``DisplayClient``, whose
JSON answers and error messages are already terminal-safe (``procplan.present``), and every
stderr line goes through ``warn`` or ``fail``, which sanitise what they print.

Exit codes are part of the interface for scripts: 1 means the server refused (its message is
shown), 2 means no server answered (or the command line was wrong, Click's usage code).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from procplan.client import (
    ApiError,
    InvalidResponse,
    ProcPlanClient,
    ServerUnreachable,
    resolve_url,
)
from procplan.client.auth import TOKEN_ENV, Credential, resolve_act_as
from procplan.client.transport import Transport
from procplan.present import MESSAGE_LIMIT, clean_payload, terminal_text

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="ProcPlan server URL (default: $PROCPLAN_URL, else http://127.0.0.1:8080)",
        show_default=False,
    ),
]

AsOption = Annotated[
    str | None,
    typer.Option(
        "--as",
        metavar="USER",
        help="Act for this user (admins only; default: $PROCPLAN_AS)",
        show_default=False,
    ),
]

PIPE_WIDTH = 160


def console() -> Console:
    """A stdout console built per call so that test runners capturing stdout see output.

    Piped output gets a fixed wide width instead of Rich's 80 columns, so ``| grep`` and
    ``| less`` see whole rows rather than truncated cells.
    """
    from rich.console import Console  # loads only for commands that draw

    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(highlight=False, width=width)


def utc_now() -> datetime:
    return datetime.now(tz=UTC)


class DisplayTransport(Transport):
    """A transport for commands that print what they get: every string of every JSON answer,
    and the message of every refusal, is passed through ``present.terminal_text``.

    Sanitising where the data enters (rather than in each renderer) means no command can forget
    it: a label with ``ESC ]0;...`` arrives as the printable text ``\\x1b]0;...``, before the
    client parses it into typed answers. Values that drive later requests (ids, instants, GPU
    indices) are printable already and unchanged.
    """

    def request(self, method: str, path: str, **options: Any) -> Any:
        try:
            return clean_payload(super().request(method, path, **options))
        except ApiError as exc:
            message = terminal_text(exc.message, MESSAGE_LIMIT)
            raise ApiError(exc.status, message, exc.code) from exc


class DisplayClient(ProcPlanClient):
    """A ``ProcPlanClient`` whose answers are terminal-safe (``DisplayTransport``)."""

    transport_type = DisplayTransport


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the raw JSON (same as --format json)")
]
FormatOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        help="table (default), json (the server's answer) or csv (the table's columns)",
        case_sensitive=False,
        show_default=False,
    ),
]


def output_format(as_json: bool, fmt: OutputFormat | None) -> OutputFormat:
    """``--json`` and ``--format`` as one choice; contradicting each other is a usage error."""
    if as_json and fmt not in (None, OutputFormat.JSON):
        usage_error(f"give either --json or --format {fmt}, not both", "--json / --format")
    return OutputFormat.JSON if as_json else (fmt or OutputFormat.TABLE)


def print_csv(table: Table) -> None:
    """A Rich table as CSV on stdout: its column headers, then its cells as plain text (already
    sanitised when the table was built; times as the table shows them)."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([str(column.header) for column in table.columns])
    cells = [[getattr(c, "plain", c) for c in column.cells] for column in table.columns]
    writer.writerows(zip(*cells, strict=True))


def print_rows(
    rows: list[Any],
    as_json: bool,
    empty: str,
    table: Callable[[list[Any]], Any],
    fmt: OutputFormat | None = None,
) -> bool:
    """The one way list commands print: raw JSON, CSV of the table, a line saying there is
    nothing, or the Rich table ``table(rows)`` builds; ``True`` when a table was printed."""
    chosen = output_format(as_json, fmt)
    if chosen is OutputFormat.JSON:
        typer.echo(json.dumps(rows, indent=2))
        return False
    if chosen is OutputFormat.CSV:
        print_csv(table(rows))
        return False
    if not rows:
        typer.echo(empty)
        return False
    console().print(table(rows))
    return True


def warn(message: str) -> None:
    """One line on stderr, sanitised: messages quote server text and the user's arguments."""
    typer.echo(terminal_text(message, MESSAGE_LIMIT), err=True)


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """Print one (sanitised) line on stderr and leave with ``code``."""
    warn(message)
    raise typer.Exit(code)


def usage_error(message: str, option: str | None = None) -> NoReturn:
    """A wrong command line, reported like Click's own usage errors (exit 2)."""
    raise typer.BadParameter(message, param_hint=option)


def read_stdin_line(option: str) -> str:
    """One line of stdin without its line ending (``--password-stdin``, ``--token-stdin``):
    secrets come through a pipe, never through arguments, which every local user can read
    in ``ps``. An empty line is a usage error."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        usage_error("nothing on stdin", option)
    return line


def credential_hint(error: ApiError, credential: Credential | None) -> str:
    """Where a refused token came from, so that a stale one can be found and dropped."""
    if error.code != "bad_token" or credential is None:
        return ""
    if credential.source == TOKEN_ENV:
        return f" (the token in ${TOKEN_ENV})"
    return f" (the token saved in {credential.source}; `procplan logout` forgets it)"


@contextmanager
def connect(
    url: str | None,
    raw: bool = False,
    act_as: str | None = None,
    credential: Credential | None = None,
    discover: bool = True,
) -> Iterator[ProcPlanClient]:
    """Yield a client for ``--url`` (acting for ``--as``/``$PROCPLAN_AS`` if given); turn any
    client failure into ``fail``. Without ``discover`` the environment is not consulted at
    all (no ``$PROCPLAN_TOKEN``, no saved sign-in, no ``$PROCPLAN_AS``): commands that sign in
    pass their own ``credential``, or none.

    The client is a ``DisplayClient`` unless ``raw``: ``--json`` output wants the server's
    strings as sent, and ``json.dumps`` (ASCII) already writes every control character and
    every non-ASCII character as a ``\\uNNNN`` escape, so it cannot drive a terminal either.
    """
    factory = ProcPlanClient if raw else DisplayClient
    used: Credential | None = None
    try:
        with factory(
            resolve_url(url),
            act_as=resolve_act_as(act_as) if discover else act_as,
            credential=credential,
            discover=discover,
        ) as client:
            used = client.credential
            yield client
    except ServerUnreachable as exc:
        fail(f"cannot reach ProcPlan server at {exc.url}: {exc.reason}", EXIT_UNREACHABLE)
    except ApiError as exc:
        fail(f"error: {exc.message}{credential_hint(exc, used)}", EXIT_REFUSED)
    except InvalidResponse as exc:
        fail(f"error: {exc}", EXIT_REFUSED)
