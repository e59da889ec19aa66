"""Rich renderings of native API payloads (bookings, nodes) for the ``procplan`` commands.

Rendering takes the wire dicts as they come and never recomputes server decisions; it only
shortens timestamps to ``YYYY-MM-DD HH:MM`` (UTC) so tables fit a terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

Payload = Mapping[str, Any]

PRIORITY_STYLE = {"high": "bold red", "medium": "yellow", "low": "dim"}
STATUS_STYLE = {"active": "green", "completed": "dim", "cancelled": "dim strike"}


def short_time(value: object) -> str:
    """``YYYY-MM-DD HH:MM`` in UTC; anything unparsable is shown as received."""
    if not isinstance(value, str):
        return "" if value is None else str(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


def _styled(value: str, styles: Mapping[str, str]) -> str:
    style = styles.get(value)
    return f"[{style}]{value}[/]" if style else value


def booking_summary(booking: Payload) -> str:
    """One plain line: ``#12 node-a [node-a-gpu0, node-a-gpu1] 2026-11-24 09:00 → ... (high)``."""
    gpus = ", ".join(booking.get("gpu_ids") or [])
    return (
        f"#{booking.get('id')} {booking.get('node_id')} [{gpus}] "
        f"{short_time(booking.get('start'))} → {short_time(booking.get('end'))} "
        f"({booking.get('priority', 'medium')}, {booking.get('status', 'active')})"
    )


def bookings_table(bookings: Sequence[Payload]) -> Table:
    """Bookings as a table; labels are escaped so user text never becomes Rich markup."""
    table = Table(title="Bookings (times UTC)", title_justify="left")
    for column in ("ID", "Node", "GPUs", "Start", "End", "User", "Label", "Priority", "Status"):
        table.add_column(column, justify="right" if column == "ID" else "left")
    for booking in bookings:
        table.add_row(
            str(booking.get("id", "")),
            _escape(booking.get("node_id")),
            _escape(", ".join(booking.get("gpu_ids") or [])),
            short_time(booking.get("start")),
            short_time(booking.get("end")),
            _escape(booking.get("user")),
            _escape(booking.get("label")),
            _styled(str(booking.get("priority", "")), PRIORITY_STYLE),
            _styled(str(booking.get("status", "")), STATUS_STYLE),
        )
    return table


def _escape(value: object) -> str:
    return escape("" if value is None else str(value))
