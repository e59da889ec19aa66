"""Booking commands of ``procplan``: book, bookings, release, keep, extend.

Cancelling a booking is ``procplan cancel --booking ID`` (``jobs.cancel``): plain ``cancel``
takes job ids, as the issue asks.

They are thin: parse the human arguments, make one or two native API calls, print the result.
Every rule (conflicts, limits, ownership) is the server's, so its message is what users see.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

import typer

from procplan.cli.common import AsOption, UrlOption, connect, console, usage_error, utc_now, warn
from procplan.cli.durations import parse_duration, parse_instant
from procplan.cli.format import booking_summary, bookings_table, preview_summary
from procplan.present import MESSAGE_LIMIT, capped, terminal_text


class PriorityChoice(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class StatusChoice(StrEnum):
    active = "active"
    completed = "completed"
    cancelled = "cancelled"


BookingId = Annotated[int, typer.Argument(help="Booking id (as listed by 'procplan bookings')")]


def _instant(text: str, option: str) -> datetime:
    try:
        return parse_instant(text, utc_now())
    except ValueError as exc:
        usage_error(str(exc), option)


def _duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        usage_error(str(exc), option)


def _gpu_selection(
    gpus: list[str] | None, count: int | None
) -> tuple[list[str] | None, int | None]:
    """Either explicit GPU ids or a count (one GPU when neither is given)."""
    if gpus and count is not None:
        usage_error("give either --gpu or --count, not both", "--gpu / --count")
    return (list(gpus), None) if gpus else (None, count or 1)


def book(
    node: Annotated[str, typer.Argument(help="Node id, e.g. node-a")],
    gpu: Annotated[
        list[str] | None, typer.Option("--gpu", help="GPU id to book (repeatable)")
    ] = None,
    count: Annotated[
        int | None, typer.Option("-n", "--count", min=1, help="Let the server pick N free GPUs")
    ] = None,
    start: Annotated[
        str, typer.Option(help="ISO 8601 (naive = UTC) or 'now' (next whole minute)")
    ] = "now",
    duration: Annotated[
        str | None, typer.Option("--duration", "-d", help="Length: 90m, 2h, 3d, 1d12h")
    ] = None,
    end: Annotated[str | None, typer.Option(help="End time, ISO 8601 (naive = UTC)")] = None,
    priority: Annotated[PriorityChoice | None, typer.Option(help="Default: medium")] = None,
    label: Annotated[
        str | None, typer.Option(help="Text the calendar shows (default: your user name)")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Only show what would be booked and which jobs it would preempt"
        ),
    ] = False,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Book GPUs of one node for a time window."""
    gpu_ids, gpu_count = _gpu_selection(gpu, count)
    if (duration is None) == (end is None):
        usage_error("give exactly one of --duration or --end", "--duration / --end")
    begin = _instant(start, "--start")
    minutes = int(_duration(duration, "--duration").total_seconds() // 60) if duration else None
    with connect(url, act_as=act_as) as client:
        call = client.bookings.check if dry_run else client.bookings.create
        answer = call(
            node,
            begin,
            end=_instant(end, "--end") if end else None,
            duration_minutes=minutes,
            gpu_ids=gpu_ids,
            gpu_count=gpu_count,
            priority=priority.value if priority else None,
            label=label,
        )
    if dry_run:
        typer.echo(f"Would book {preview_summary(answer)} (nothing booked: --dry-run)")
    else:
        typer.echo(f"Booked {booking_summary(answer.get('booking') or {})}")
    for job in answer.get("conflicts_with_jobs") or []:
        warn(preempted_line(job))


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


def bookings(
    all_users: Annotated[bool, typer.Option("--all", help="Everyone's bookings")] = False,
    node: Annotated[str | None, typer.Option(help="Only this node id")] = None,
    gpu: Annotated[str | None, typer.Option(help="Only bookings holding this GPU id")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's bookings")] = None,
    status: Annotated[StatusChoice | None, typer.Option(help="Only this status")] = None,
    start: Annotated[str | None, typer.Option(help="Overlapping from (ISO 8601)")] = None,
    end: Annotated[str | None, typer.Option(help="Overlapping until (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows")] = 100,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """List bookings: yours by default, everyone's with --all."""
    begin = _instant(start, "--start") if start else None
    finish = _instant(end, "--end") if end else None
    with connect(url, act_as=act_as) as client:
        owner = user or (None if all_users else client.user_name())
        page = client.bookings.list(
            node=node,
            gpu=gpu,
            user=owner,
            status=status.value if status else None,
            start=begin,
            end=finish,
            limit=limit,
        )
    rows = page.get("bookings") or []
    if not rows:
        typer.echo("No bookings.")
        return
    console().print(bookings_table(rows))
    total = page.get("total", len(rows))
    if isinstance(total, int) and total > len(rows):
        typer.echo(f"Showing {len(rows)} of {total}; use --limit or filters to see more.")


def release(booking_id: BookingId, url: UrlOption = None, act_as: AsOption = None) -> None:
    """Finish a booking now: past time stays in history, the rest is freed."""
    with connect(url, act_as=act_as) as client:
        booking = client.bookings.release(booking_id)
    typer.echo(f"Released {booking_summary(booking)}")


def keep(booking_id: BookingId, url: UrlOption = None, act_as: AsOption = None) -> None:
    """Keep a booking whose GPUs look idle: it will not be released as idle (ADR 0013)."""
    with connect(url, act_as=act_as) as client:
        answer = client.bookings.keep(booking_id)
    booking = answer.get("booking")
    typer.echo(f"Kept {booking_summary(booking if isinstance(booking, dict) else {})}")


def extend(
    booking_id: BookingId,
    end: Annotated[str | None, typer.Option(help="New end, ISO 8601 (may shorten)")] = None,
    by: Annotated[str | None, typer.Option(help="Add this to the current end: 1h, 30m")] = None,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Move the end of a booking: --end sets it, --by adds to it."""
    if (end is None) == (by is None):
        usage_error("give exactly one of --end or --by", "--end / --by")
    fixed_end = _instant(end, "--end") if end else None
    delta = _duration(by, "--by") if by else timedelta()
    with connect(url, act_as=act_as) as client:
        if fixed_end is None:
            current_end = client.bookings.get(booking_id).get("end")
            fixed_end = parse_instant(str(current_end), utc_now()) + delta
        booking = client.bookings.set_end(booking_id, fixed_end)
    typer.echo(f"Updated {booking_summary(booking)}")
