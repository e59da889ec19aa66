"""``procplan notify``: where ProcPlan tells you things (issue #14, ADR 0012).

A channel is an apprise URL: ``mailto://user:pass@smtp.example.org?to=me@example.org``,
``json://host/path`` (a webhook), ``slack://...``, ``matrix://...``, ``ntfy://topic``, ...
(https://github.com/caronc/apprise/wiki). It may hold a secret, so lists show only its scheme
and host. ``--events`` picks what it gets: "*" (default), kinds such as ``job.failed`` or
families such as ``job`` and ``booking``, comma-separated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
)
from procplan.cli.format import short_time
from procplan.core.notes import NoteKind
from procplan.present import capped, cell

app = typer.Typer(
    help="Notification channels: e-mail, chat, webhooks (add, list, test, remove).",
    no_args_is_help=True,
)

Payload = Mapping[str, Any]
KINDS = ", ".join(k.value for k in NoteKind)


def events_text(events: object) -> str:
    if events == "*":
        return "all"
    return ", ".join(str(e) for e in events) if isinstance(events, list) else str(events)


def last_result(channel: Payload) -> str:
    """The last delivery's outcome: "sent 12-05 21:03", "error: ...", or nothing yet."""
    sent, failed = channel.get("last_sent_at"), channel.get("last_error_at")
    if failed and (not sent or str(failed) > str(sent)):
        return f"error {short_time(failed)}: {channel.get('last_error') or '?'}"
    return f"sent {short_time(sent)}" if sent else "nothing sent yet"


def channels_table(channels: Sequence[Payload]) -> Table:
    table = Table(title="Notification channels", title_justify="left")
    for column in ("ID", "OWNER", "URL", "EVENTS", "LABEL", "LAST"):
        table.add_column(column)
    for channel in channels:
        table.add_row(
            cell(channel.get("id", "")),
            cell("cluster" if channel.get("cluster") else channel.get("user") or ""),
            cell(channel.get("url") or ""),
            cell(events_text(channel.get("events"))),
            cell(channel.get("label") or ""),
            cell(last_result(channel)),
        )
    return table


@app.command()
def add(
    target: Annotated[str, typer.Argument(metavar="URL", help="An apprise URL")],
    events: Annotated[
        str, typer.Option(help=f"What to send: * or a comma list of {KINDS}, or job, booking")
    ] = "*",
    label: Annotated[str, typer.Option(help="A name to recognise it by")] = "",
    cluster: Annotated[
        bool, typer.Option("--cluster", help="A channel for the whole lab (admins)")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Add a channel; `procplan notify test ID` sends it a test message."""
    with connect(url) as client:
        made = client.notify.add(target, events, label, cluster)
    typer.echo(f"Added channel {capped(made.get('id'))} ({capped(made.get('url'))}) for "
        f"{events_text(made.get('events'))} events")  # fmt: skip


@app.command("list")
def list_channels(
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw list")] = False,
    fmt: FormatOption = None,
    url: UrlOption = None,
) -> None:
    """Your channels and how their last delivery went (an admin's: everyone's)."""
    as_json = output_format(as_json, fmt) is OutputFormat.JSON
    with connect(url, raw=as_json) as client:
        rows = client.notify.channels().get("channels") or []
    print_rows(rows, as_json, "No notification channels.", channels_table, fmt)


@app.command()
def test(
    channel_id: Annotated[int, typer.Argument(min=1, help="Channel id (`procplan notify list`)")],
    url: UrlOption = None,
) -> None:
    """Send a test message now and say whether it went."""
    with connect(url) as client:
        answer = client.notify.test(channel_id)
    if not answer.get("sent"):
        fail(f"procplan: channel {channel_id}: {answer.get('error') or 'not sent'}")
    typer.echo(f"Sent a test message to channel {channel_id}")


@app.command()
def remove(
    channel_id: Annotated[int, typer.Argument(min=1, help="Channel id (`procplan notify list`)")],
    url: UrlOption = None,
) -> None:
    """Remove a channel: nothing more is sent to it."""
    with connect(url) as client:
        client.notify.remove(channel_id)
    typer.echo(f"Removed channel {channel_id}")
