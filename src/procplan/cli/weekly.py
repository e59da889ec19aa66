"""``procplan book ... --weekly-until DATE``: a weekly series, listed first, then all or nothing.

The server books a series in one transaction and only whole (``repeat`` of ``POST
/api/v1/bookings``, see docs/bookings.md). The command first asks for the dry run, prints every
occurrence and every refused one (with the server's reason: who is in the way, next free), and
books only when none is refused — so a refusal is seen before anything is booked, and
``--dry-run`` stops after the list.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

import typer

from procplan.cli.common import fail, warn
from procplan.cli.durations import display_zone
from procplan.cli.format import booking_summary, preempted_line, preview_summary, short_time
from procplan.client import ProcPlanClient, format_time
from procplan.present import MESSAGE_LIMIT, capped, terminal_text

WEEK = timedelta(weeks=1)


def series_until(start: datetime, until: datetime) -> str:
    """The ``repeat.until`` that ends the series on the day ``until`` falls on in the display
    zone: the start of the last occurrence on or before that day's end. The server counts a
    timestamp's whole UTC day, and the next occurrence is a week later, so the series is
    exactly the one the user named in their own zone."""
    zone = display_zone()
    day = until.astimezone(zone).date()
    day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone) - timedelta(seconds=1)
    first = start.astimezone(UTC)
    if day_end < first:
        return format_time(day_end)  # the server says why: 'until' before the start
    return format_time(first + (day_end - first) // WEEK * WEEK)


def book_weekly(
    client: ProcPlanClient,
    node: str,
    request: dict[str, Any],
    until: str,
    *,
    dry_run: bool,
    as_json: bool,
) -> None:
    """List the series (the server's dry run), then book it whole unless ``dry_run`` or
    some occurrence is refused (exit 1, nothing booked)."""
    preview = client.bookings.create(node, **request, repeat_until=until, dry_run=True)
    refused = preview.get("conflicts") or []
    if as_json and (dry_run or refused):
        typer.echo(json.dumps(preview, indent=2))
    elif not as_json:
        _print_preview(preview)
    if refused:
        total = len(refused) + len(preview.get("bookings") or [])
        fail(f"error: {len(refused)} of {total} weekly bookings are refused; nothing was booked")
    if dry_run:
        if not as_json:
            typer.echo("Nothing booked: --dry-run")
        return
    answer = client.bookings.create(node, **request, repeat_until=until)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    made = answer.get("bookings") or []
    typer.echo(f"Booked {len(made)} weekly booking{'s' if len(made) != 1 else ''}:")
    for booking in made:
        typer.echo(f"  {booking_summary(booking if isinstance(booking, dict) else {})}")


def _print_preview(preview: dict[str, Any]) -> None:
    """Every occurrence that would be booked, every refused one with the server's reason,
    and the jobs of others the series would preempt."""
    for booking in preview.get("bookings") or []:
        typer.echo(f"  would book {preview_summary(booking if isinstance(booking, dict) else {})}")
    for refusal in preview.get("conflicts") or []:
        if not isinstance(refusal, dict):
            continue
        when = f"{short_time(refusal.get('start'))} → {short_time(refusal.get('end'))}"
        reason = terminal_text(refusal.get("error"), MESSAGE_LIMIT)
        typer.echo(f"  refused    {capped(when)}: {reason}")
    for job in preview.get("conflicts_with_jobs") or []:
        warn(preempted_line(job))
