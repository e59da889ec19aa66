"""Read-only views of ``procplan``: the weekly calendar and the node list.

``calendar`` prints exactly ``procplan-cli``'s table (people know it, scripts grep it) but
defaults to every node when this host is not a node, which is the common case on laptops.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from procplan.cli.common import UrlOption, connect, fail, usage_error, utc_now
from procplan.cli.weektable import (
    host_name,
    no_match_message,
    render_week_table,
    select_nodes,
    week_window,
)


def _choose_nodes(
    nodes: list[dict[str, Any]], all_nodes: bool, wanted: list[str] | None
) -> list[dict[str, Any]]:
    """--all, else --node ids (must match), else this host, else every node."""
    if all_nodes:
        return nodes
    if wanted:
        chosen = select_nodes(nodes, set(wanted))
        if not chosen:
            fail(no_match_message(set(wanted)))
        return chosen
    return select_nodes(nodes, {host_name()}) or nodes


def calendar(
    all_nodes: Annotated[bool, typer.Option("-a", "--all", help="Every node")] = False,
    node: Annotated[list[str] | None, typer.Option("--node", help="Node id (repeatable)")] = None,
    date: Annotated[
        str | None, typer.Option(help="One UTC day, YYYY-MM-DD (default: this week)")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the server's availability answers (JSON)")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Weekly GPU × day table (default: this host's node, or all nodes)."""
    try:
        start, end = week_window(date, utc_now())
    except ValueError as exc:
        usage_error(str(exc), "--date")
    with connect(url, raw=as_json) as client:
        listed = client.compat.nodes().get("nodes") or []
        nodes = _choose_nodes([n for n in listed if isinstance(n, dict)], all_nodes, node)
        if not nodes:
            fail("The server has no nodes.")
        answer = client.compat.availability_bulk(
            [str(n["id"]) for n in nodes], start, end, granularity="day"
        )
    payloads = answer.get("availability") or []
    if as_json:
        typer.echo(json.dumps(payloads, indent=2))
        return
    typer.echo("\n".join(render_week_table(payload) for payload in payloads), nl=False)
