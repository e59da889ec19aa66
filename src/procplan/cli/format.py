"""Rich renderings of native API payloads (bookings, nodes) for the ``procplan`` commands.

Rendering takes the wire dicts as they come and never recomputes server decisions; it only
shortens timestamps to ``YYYY-MM-DD HH:MM`` in the display zone (``--tz``, ``$PROCPLAN_TZ``,
else local; ``durations.display_zone``) so tables fit a terminal. Server text goes
through ``procplan.present``: cells are ``Text`` (never Rich markup), sanitised and capped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from procplan.cli.durations import display_zone, zone_name
from procplan.present import MESSAGE_LIMIT, capped, cell, joined, terminal_text

Payload = Mapping[str, Any]

PRIORITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "dim"}
STATUS_STYLE = {"active": "green", "completed": "dim", "cancelled": "dim strike"}


def short_time(value: object) -> str:
    """``YYYY-MM-DD HH:MM`` in the display zone; anything unparsable is shown as received."""
    if not isinstance(value, str):
        return "" if value is None else str(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(display_zone())
    return moment.strftime("%Y-%m-%d %H:%M")


def _styled(value: object, styles: Mapping[str, str]) -> Text:
    return cell(value, style=styles.get(str(value), ""))


def booking_summary(booking: Payload) -> str:
    """One plain line: ``#12 node-a [node-a-gpu0, node-a-gpu1] 2026-11-24 09:00 → ... (high)``;
    every server value sanitised and capped, since the line is printed as is."""
    gpus = joined(booking.get("gpu_ids") or [])
    return (
        f"#{capped(booking.get('id'))} {capped(booking.get('node_id'))} [{gpus}] "
        f"{capped(short_time(booking.get('start')))} → {capped(short_time(booking.get('end')))} "
        f"({capped(booking.get('priority', 'medium'))}, {capped(booking.get('status', 'active'))})"
    )


def preview_summary(preview: Payload) -> str:
    """``node-a [node-a-gpu0] 2026-11-24 09:00 → 2026-11-24 11:00``: what a dry run would
    book (sanitised and capped like ``booking_summary``)."""
    gpus = joined(preview.get("gpu_ids") or [])
    return (
        f"{capped(preview.get('node_id'))} [{gpus}] "
        f"{capped(short_time(preview.get('start')))} → {capped(short_time(preview.get('end')))}"
    )


def bookings_table(bookings: Sequence[Payload]) -> Table:
    """Bookings as a table; every cell is a sanitised, capped ``Text``, never Rich markup."""
    table = Table(title=f"Bookings (times {zone_name()})", title_justify="left")
    for column in ("ID", "Node", "GPUs", "Start", "End", "User", "Label", "Priority", "Status"):
        table.add_column(column, justify="right" if column == "ID" else "left")
    for booking in bookings:
        table.add_row(
            cell(booking.get("id", "")),
            cell(booking.get("node_id")),
            cell(joined(booking.get("gpu_ids") or []), limit=None),
            cell(short_time(booking.get("start"))),
            cell(short_time(booking.get("end"))),
            cell(booking.get("user")),
            cell(booking.get("label")),
            _styled(booking.get("priority", ""), PRIORITY_STYLE),
            _styled(booking.get("status", ""), STATUS_STYLE),
        )
    return table


def preempted_line(job: object) -> str:
    """One job this booking will preempt (rule 4), as the server described it."""
    if not isinstance(job, dict):
        return f"warning: job {capped(job)} holds some of these GPUs now"
    who = job.get("user")
    owner = f" of {capped(who)}" if who else ""
    gpus = ", ".join(capped(g) for g in job.get("gpu_ids") or [])
    on = f" on {gpus}" if gpus else ""
    action = job.get("action")
    what = f": {terminal_text(action, MESSAGE_LIMIT)}" if action else ""
    return f"warning: open-ended job {capped(job.get('job_id'))}{owner} holds{on}{what}"
