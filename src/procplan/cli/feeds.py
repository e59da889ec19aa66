"""``procplan feed``: calendar feeds of your bookings (ADR 0022) for calendar apps.

``feed new`` asks the server for a new feed secret (``POST /api/v1/feeds``; the older one
stops) and prints your feed URL and one per node, to paste into a calendar app's "subscribe
from URL". The secret is inside the URLs and shown only this once, so they go to stdout (for
pipes), the hints to stderr. ``feed revoke`` stops it.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from procplan.cli.common import AsOption, JsonOption, UrlOption, connect, warn
from procplan.client import ApiError
from procplan.present import capped

app = typer.Typer(help="Calendar feeds (iCalendar) of bookings: new, revoke.", no_args_is_help=True)

SUBSCRIBE_HINT = (
    "Paste a URL into Google Calendar (Other calendars → From URL), Outlook (Add calendar → "
    "Subscribe from web) or Thunderbird (New Calendar → On the Network). Keep it private: "
    "anyone with it sees these bookings. `procplan feed revoke` stops it."
)


def node_feeds(answer: dict[str, Any], node_ids: list[str]) -> dict[str, str]:
    """Each node's feed URL, from the answer's ``node_url`` (``{node_id}`` placeholder)."""
    template = str(answer.get("node_url") or "")
    if "{node_id}" not in template:
        return {}
    return {node_id: template.replace("{node_id}", node_id) for node_id in node_ids}


@app.command("new")
def new(as_json: JsonOption = False, url: UrlOption = None, act_as: AsOption = None) -> None:
    """Make a new feed (your older feed URLs stop working) and print its URLs."""
    with connect(url, raw=as_json, act_as=act_as) as client:
        answer = client.bookings.new_feed()
        try:
            nodes = client.nodes.list().get("nodes") or []
        except ApiError:
            nodes = []
    node_ids = [str(n.get("id")) for n in nodes if isinstance(n, dict) and n.get("id")]
    per_node = node_feeds(answer, node_ids)
    if as_json:
        typer.echo(json.dumps({**answer, "node_urls": per_node}, indent=2))
        return
    typer.echo(f"Your bookings ({capped(answer.get('user'))}): {capped(answer.get('url'), 2000)}")
    for node_id, feed in per_node.items():
        typer.echo(f"Node {capped(node_id)}: {capped(feed, 2000)}")
    warn(SUBSCRIBE_HINT)


@app.command("revoke")
def revoke(as_json: JsonOption = False, url: UrlOption = None, act_as: AsOption = None) -> None:
    """Stop your feed: subscribed calendar apps get nothing more."""
    with connect(url, raw=as_json, act_as=act_as) as client:
        answer = client.bookings.revoke_feed()
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    if answer.get("revoked"):
        typer.echo(f"Revoked the calendar feed of {capped(answer.get('user'))}.")
    else:
        typer.echo(f"{capped(answer.get('user'))} had no calendar feed.")
