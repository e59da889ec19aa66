"""What every ``procplan`` client command shares: the ``--url`` option, the client, and one
mapping from client failures to a single stderr line and an exit code.

Output hygiene has its choke points here: ``connect`` hands commands a ``DisplayClient``, whose
JSON answers and error messages are already terminal-safe (``procplan.present``), and every
stderr line goes through ``warn`` or ``fail``, which sanitise what they print.

Exit codes are part of the interface for scripts: 1 means the server refused (its message is
shown), 2 means no server answered (or the command line was wrong, Click's usage code).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from procplan.client import (
    ApiError,
    InvalidResponse,
    ProcPlanClient,
    ServerUnreachable,
    resolve_url,
)
from procplan.present import MESSAGE_LIMIT, clean_payload, terminal_text

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


PIPE_WIDTH = 160


def console() -> Console:
    """A stdout console built per call so that test runners capturing stdout see output.

    Piped output gets a fixed wide width instead of Rich's 80 columns, so ``| grep`` and
    ``| less`` see whole rows rather than truncated cells.
    """
    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(highlight=False, width=width)


def utc_now() -> datetime:
    return datetime.now(tz=UTC)


class DisplayClient(ProcPlanClient):
    """A ``ProcPlanClient`` for commands that print what they get: every string of every JSON
    answer, and the message of every refusal, is passed through ``present.terminal_text``.

    Sanitising where the data enters (rather than in each renderer) means no command can forget
    it: a label with ``ESC ]0;...`` arrives as the printable text ``\\x1b]0;...``. Values that
    drive later requests (ids, instants, GPU indices) are printable already and unchanged.
    """

    def request(self, method: str, path: str, **options: Any) -> Any:
        try:
            return clean_payload(super().request(method, path, **options))
        except ApiError as exc:
            message = terminal_text(exc.message, MESSAGE_LIMIT)
            raise ApiError(exc.status, message, exc.code) from exc


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


@contextmanager
def connect(url: str | None, raw: bool = False) -> Iterator[ProcPlanClient]:
    """Yield a client for ``--url``; turn any client failure into ``fail``.

    The client is a ``DisplayClient`` unless ``raw``: ``--json`` output wants the server's
    strings as sent, and ``json.dumps`` (ASCII) already writes every control character and
    every non-ASCII character as a ``\\uNNNN`` escape, so it cannot drive a terminal either.
    """
    factory = ProcPlanClient if raw else DisplayClient
    try:
        with factory(resolve_url(url)) as client:
            yield client
    except ServerUnreachable as exc:
        fail(f"cannot reach ProcPlan server at {exc.url}: {exc.reason}", EXIT_UNREACHABLE)
    except ApiError as exc:
        fail(f"error: {exc.message}", EXIT_REFUSED)
    except InvalidResponse as exc:
        fail(f"error: {exc}", EXIT_REFUSED)
