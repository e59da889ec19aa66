"""What every ``procplan`` client command shares: the ``--url`` option, the client, and one
mapping from client failures to a single stderr line and an exit code.

Exit codes are part of the interface for scripts: 1 means the server refused (its message is
shown), 2 means no server answered (or the command line was wrong, Click's usage code).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from procplan.client import (
    ApiError,
    InvalidResponse,
    ProcPlanClient,
    ServerUnreachable,
    resolve_url,
)

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


def fail(message: str, code: int = EXIT_REFUSED) -> NoReturn:
    """Print one line on stderr and leave with ``code``."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def usage_error(message: str, option: str | None = None) -> NoReturn:
    """A wrong command line, reported like Click's own usage errors (exit 2)."""
    raise typer.BadParameter(message, param_hint=option)


@contextmanager
def connect(url: str | None) -> Iterator[ProcPlanClient]:
    """Yield a client for ``--url``; turn any client failure into ``fail``."""
    try:
        with ProcPlanClient(resolve_url(url)) as client:
            yield client
    except ServerUnreachable as exc:
        fail(f"cannot reach ProcPlan server at {exc.url}: {exc.reason}", EXIT_UNREACHABLE)
    except ApiError as exc:
        fail(f"error: {exc.message}", EXIT_REFUSED)
    except InvalidResponse as exc:
        fail(f"error: {exc}", EXIT_REFUSED)
