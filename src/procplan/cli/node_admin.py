"""``procplan node``: node maintenance like Slurm's ``scontrol``/``sinfo`` (ADR 0020).

``drain`` stops new jobs and bookings on a node (running work finishes, booking owners are
told), ``resume`` undoes a drain or a removal, ``remove`` retires a node with its history kept,
and ``list`` prints one row per node with the server's state word and reason (``sinfo``). The
commands only send what the admin typed and print the server's answer; every server string
goes through ``present`` before it reaches the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.table import Table

from procplan.cli.common import UrlOption, connect, print_rows
from procplan.cli.format import short_time
from procplan.present import capped, cell

app = typer.Typer(
    help="Node maintenance (admins): drain, resume, remove; list states and reasons.",
    no_args_is_help=True,
)

Payload = Mapping[str, Any]
NodeArg = Annotated[str, typer.Argument(help="Node id (as listed by 'procplan node list')")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the raw answer")]

STATE_STYLE = {
    "idle": "green",
    "mixed": "cyan",
    "allocated": "blue",
    "draining": "yellow",
    "drained": "yellow",
    "down": "red",
}


def nodes_table(nodes: Sequence[Payload]) -> Table:
    """``sinfo -R``-like: node, state word, GPUs, agent liveness, reason, since, by."""
    table = Table(title="Nodes", title_justify="left")
    for column in ("NODE", "STATE", "GPUS", "AGENT", "REASON", "SINCE", "BY"):
        table.add_column(column)
    for node in nodes:
        state = str(node.get("sched_state") or "")
        table.add_row(
            cell(node.get("id") or ""),
            cell(state, style=STATE_STYLE.get(state, "")),
            cell(node.get("gpu_count", "")),
            cell(node.get("state") or ""),
            cell(node.get("reason") or ""),
            short_time(node.get("drained_at")),
            cell(node.get("drained_by") or ""),
        )
    return table


def _done(answer: Payload, node: str, as_json: bool, what: str) -> None:
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    typer.echo(f"{what} node {capped(answer.get('node') or node)}")


@app.command("list")
def list_nodes(as_json: JsonOpt = False, url: UrlOption = None) -> None:
    """Every node with its state (idle, mixed, allocated, draining, drained, down) and
    the reason."""
    with connect(url, raw=as_json) as client:
        rows = client.nodes.list().get("nodes") or []
    print_rows(rows, as_json, "No nodes.", nodes_table)


@app.command()
def drain(
    node: NodeArg,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (shown to users and in node lists)")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOption = None,
) -> None:
    """No new jobs or bookings start on NODE; running jobs finish, existing bookings stay and
    their owners are told."""
    with connect(url, raw=as_json) as client:
        answer = client.nodes.drain(node, reason)
    _done(answer, node, as_json, "Drained")
    told = answer.get("notified_bookings") or []
    if told and not as_json:
        typer.echo(f"Told the owners of bookings {', '.join(capped(b) for b in told)}")


@app.command()
def resume(node: NodeArg, as_json: JsonOpt = False, url: UrlOption = None) -> None:
    """NODE takes new jobs and bookings again (undoes drain and remove)."""
    with connect(url, raw=as_json) as client:
        answer = client.nodes.resume(node)
    _done(answer, node, as_json, "Resumed")


@app.command()
def remove(node: NodeArg, as_json: JsonOpt = False, url: UrlOption = None) -> None:
    """Retire NODE (refused while jobs run or bookings have not ended; history kept;
    'resume' brings it back)."""
    with connect(url, raw=as_json) as client:
        answer = client.nodes.remove(node)
    _done(answer, node, as_json, "Removed")
