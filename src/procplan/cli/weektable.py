"""The GPU × day text table of ``procplan-cli``, shared with ``procplan calendar``.

The layout is ProcPlan's, byte for byte (``COMPAT.md``): scripts and people grep it. It is
rendered from a ``GET /api/availability?granularity=day`` payload alone, so the table is a pure
function that tests can pin with fixtures. Payloads with only hourly grids (older ProcPlan
servers) are folded into days the way ProcPlan's CLI did.

Every piece of server text is passed through ``present.terminal_text`` (labels, GPU and node
names and kinds, the window), and a label or name longer than ``present.CELL_LIMIT`` is cut
with an ellipsis, so a hostile label can neither drive the terminal nor widen the table to
thousands of columns. Ordinary text is unchanged, so the layout stays ProcPlan's.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from procplan.present import capped, terminal_text

PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2}
FREE_CELL = "-"
BAD_DATE_MESSAGE = "Invalid --date value, expected YYYY-MM-DD"

Payload = Mapping[str, Any]
NodeT = TypeVar("NodeT", bound=Mapping[str, Any])


def booking_cell(bookings: Iterable[Payload]) -> str:
    """``<label> (<Priority>)`` of the highest-priority booking; the last one wins ties."""
    best_rank = -1
    best = FREE_CELL
    for booking in bookings:
        priority = str(booking.get("priority") or "medium").lower()
        rank = PRIORITY_RANK.get(priority, 1)
        if rank >= best_rank:
            best_rank = rank
            label = capped(booking.get("user_label") or "")
            shown = capped(priority.capitalize())
            best = f"{label} ({shown})" if label else shown
    return best


def _gpu_label(row: Payload) -> str:
    gpu = row.get("gpu") or {}
    return f"{capped(gpu.get('id', 'GPU'))} ({capped(gpu.get('kind', '-'))})"


def _day_slot_table(days: Sequence[Payload], rows: Sequence[Payload]) -> list[list[str]]:
    """Rows of cells from ``day_slots``: a free (or missing) slot shows ``-``."""
    table = []
    for row in rows:
        slots = row.get("day_slots") or []
        cells = [_gpu_label(row)]
        for idx in range(len(days)):
            slot = slots[idx] if idx < len(slots) else None
            if not slot or slot.get("status") == "free":
                cells.append(FREE_CELL)
            else:
                cells.append(booking_cell(slot.get("bookings") or []))
        table.append(cells)
    return table


def _hour_days(hours: Sequence[Payload]) -> list[tuple[str, list[int]]]:
    """Group hour indices by the UTC date of their start, in time order."""
    groups: dict[str, tuple[str, list[int]]] = {}
    for idx, hour in enumerate(hours):
        start = hour.get("start")
        if start:
            groups.setdefault(start[:10], (start, []))[1].append(idx)
    ordered = sorted(groups.items(), key=lambda item: item[1][0])
    return [(key, indices) for key, (_, indices) in ordered]


def _hour_slot_table(
    day_groups: Sequence[tuple[str, list[int]]], rows: Sequence[Payload]
) -> list[list[str]]:
    """Rows of cells from ``hour_slots``: the best booked hour of each day."""
    table = []
    for row in rows:
        slots = row.get("hour_slots") or []
        cells = [_gpu_label(row)]
        for _, indices in day_groups:
            booked = (slots[idx] or {} for idx in indices if idx < len(slots))
            bookings = (s.get("booking") or {} for s in booked if s.get("status") == "booked")
            cells.append(booking_cell(bookings))
        table.append(cells)
    return table


def _layout(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-justified columns joined by `` | `` under a ``-+-`` rule, as ProcPlan prints.
    Every cell is sanitised here once more, so no cell can carry a control character."""
    header = [terminal_text(column) for column in header]
    rows = [[terminal_text(value) for value in row] for row in rows]
    widths = [len(column) for column in header]
    for row in rows:
        for idx, cell in enumerate(row):
            widths[idx] = max(widths[idx], len(cell))

    def line(values: list[str]) -> str:
        return " | ".join(value.ljust(widths[idx]) for idx, value in enumerate(values))

    return [line(header), "-+-".join("-" * width for width in widths), *map(line, rows)]


def render_week_table(payload: Payload) -> str:
    """One node's report: title, window, table, then an empty line (text ends with newline)."""
    node = payload.get("node") or {}
    grid = payload.get("grid") or {}
    rows = grid.get("rows") or []
    days = grid.get("days") or []
    if days and all("day_slots" in row for row in rows):
        keys = [capped(day.get("key", "")) for day in days]
        table = _day_slot_table(days, rows)
    else:
        groups = _hour_days(grid.get("hours") or [])
        keys = [capped(key) for key, _ in groups]
        table = _hour_slot_table(groups, rows)
    lines = [
        f"Node {capped(node.get('name', node.get('id', '')))} ({capped(node.get('id', ''))})",
        f"Window: {capped(payload.get('start', ''))} – {capped(payload.get('end', ''))}",
        *_layout(["GPU", *keys], table),
        "",
    ]
    return "\n".join(lines)


def week_window(date_text: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``--date`` as one UTC day, or Monday 00:00 UTC of ``now``'s week for seven days.

    Raises ``ValueError`` with ProcPlan's message for a malformed date.
    """
    if date_text is not None:
        try:
            day = datetime.strptime(date_text, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(BAD_DATE_MESSAGE) from None
        return day, day + timedelta(days=1)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday())
    return monday, monday + timedelta(days=7)


def host_name() -> str:
    """The default node filter: this machine's host name (nodes are usually named so)."""
    return socket.gethostname()


def select_nodes(nodes: Sequence[NodeT], wanted: set[str] | None) -> list[NodeT]:
    """Nodes in server order whose id is wanted; every node when ``wanted`` is None."""
    return [node for node in nodes if wanted is None or node.get("id") in wanted]


def no_match_message(wanted: set[str]) -> str:
    return (
        "No matching nodes found for filter(s): "
        + ", ".join(sorted(wanted))
        + ". Use --all to list every node."
    )
