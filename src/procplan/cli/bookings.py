"""Booking commands of ``procplan``: book (``--weekly-until``: ``weekly``), bookings, release,
keep, extend; ``edit`` is ``booking_edit``, calendar feeds ``feeds``.

Cancelling a booking is ``procplan cancel --booking ID`` (``jobs.cancel``): plain ``cancel``
takes job ids, as the issue asks.

They are thin: parse the human arguments, make one or two native API calls, print the result.
Every rule (conflicts, limits, ownership) is the server's, so its message is what users see.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer

from procplan.cli.common import (
    AsOption,
    FormatOption,
    JsonOption,
    OutputFormat,
    UrlOption,
    connect,
    console,
    fail,
    output_format,
    print_csv,
    usage_error,
    utc_now,
    warn,
)
from procplan.cli.durations import display_zone, parse_duration, parse_instant
from procplan.cli.format import (
    booking_summary,
    bookings_table,
    preempted_line,
    preview_summary,
)
from procplan.client import ApiError, ProcPlanClient

# The server's codes for "not that many GPUs free in the window" (native and store checks).
SHORT_OF_GPUS = ("not_enough_gpus", "no_free_gpus")


class PriorityChoice(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


class StatusChoice(StrEnum):
    active = "active"
    completed = "completed"
    cancelled = "cancelled"


BookingId = Annotated[int, typer.Argument(help="Booking id (as listed by 'procplan bookings')")]


def instant_arg(text: str, option: str) -> datetime:
    """A human time argument (``now``, ``+2h``, ``tomorrow 09:00``, ISO 8601) in the display
    zone; a usage error naming ``option`` otherwise."""
    try:
        return parse_instant(text, utc_now(), display_zone())
    except ValueError as exc:
        usage_error(str(exc), option)


def duration_arg(text: str, option: str) -> timedelta:
    """A length argument (``90m``, ``2h``, ``1d12h``); a usage error naming ``option``."""
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


def node_gpus(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The GPU objects of a ``/api/v1/nodes/{id}`` answer, in index order."""
    gpus = [g for g in node.get("gpus") or [] if isinstance(g, dict)]
    return sorted(gpus, key=lambda g: g["index"] if isinstance(g.get("index"), int) else 0)


def resolve_gpus(node_id: str, node: dict[str, Any], wanted: list[str]) -> list[str]:
    """``--gpu`` values as GPU ids: an id of the node as is, a number as the node's GPU of
    that index (``--gpu 3`` on node-a is node-a's GPU 3). Anything else is a usage error
    that lists the valid ones."""
    gpus = node_gpus(node)
    by_id = {str(g.get("id")): str(g.get("id")) for g in gpus}
    by_index = {str(g.get("index")): str(g.get("id")) for g in gpus if g.get("index") is not None}
    chosen = []
    for text in wanted:
        ident = by_id.get(text) or by_index.get(text.strip())
        if ident is None:
            valid = ", ".join(f"{g.get('index')} ({g.get('id')})" for g in gpus) or "none"
            usage_error(f"node {node_id} has no GPU {text!r}; its GPUs are: {valid}", "--gpu")
        chosen.append(ident)
    return chosen


def capacity_message(node_id: str, node: dict[str, Any], count: int) -> str | None:
    """``node-a has 4 GPUs`` when ``count`` is more than the node has at all, else ``None``
    (then the server's own message, about that window, is the right one)."""
    total = len(node_gpus(node))
    if count <= total:
        return None
    return f"error: {node_id} has {total} GPU{'s' if total != 1 else ''} (asked for {count})"


def _book_call(client: ProcPlanClient, dry_run: bool, node: str, **request: Any) -> Any:
    """Create (or check) the booking; a refusal for want of GPUs says how many the node has
    when the count asked can never fit there."""
    call = client.bookings.check if dry_run else client.bookings.create
    try:
        return call(node, **request)
    except ApiError as exc:
        count = request.get("gpu_count")
        if exc.code not in SHORT_OF_GPUS or not count:
            raise
        try:
            message = capacity_message(node, client.nodes.get(node), count)
        except ApiError:
            message = None
        if message is None:
            raise
        fail(message)


def book(
    node: Annotated[str, typer.Argument(help="Node id, e.g. node-a")],
    gpu: Annotated[
        list[str] | None,
        typer.Option("--gpu", help="GPU id, or the node's GPU index: --gpu 3 (repeatable)"),
    ] = None,
    count: Annotated[
        int | None, typer.Option("-n", "--count", min=1, help="Let the server pick N free GPUs")
    ] = None,
    start: Annotated[
        str,
        typer.Option(
            help="now, +2h, 'tomorrow 09:00', 'mon 14:00' or ISO 8601 (local time unless it "
            "has a zone; --tz changes the zone)"
        ),
    ] = "now",
    duration: Annotated[
        str | None, typer.Option("--duration", "-d", help="Length: 90m, 2h, 3d, 1d12h")
    ] = None,
    end: Annotated[str | None, typer.Option(help="End time, same forms as --start")] = None,
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
    weekly_until: Annotated[
        str | None,
        typer.Option(
            "--weekly-until",
            metavar="DATE",
            help="Also every week after, through this day (e.g. 2026-12-31): listed first, "
            "then booked all or nothing",
        ),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Book GPUs of one node for a time window (--gpu takes ids or the node's GPU indices)."""
    gpu_ids, gpu_count = _gpu_selection(gpu, count)
    if (duration is None) == (end is None):
        usage_error("give exactly one of --duration or --end", "--duration / --end")
    begin = instant_arg(start, "--start")
    minutes = int(duration_arg(duration, "--duration").total_seconds() // 60) if duration else None
    until = instant_arg(weekly_until, "--weekly-until") if weekly_until else None
    with connect(url, raw=as_json, act_as=act_as) as client:
        if gpu_ids:
            gpu_ids = resolve_gpus(node, client.nodes.get(node), gpu_ids)
        request: dict[str, Any] = {
            "start": begin,
            "end": instant_arg(end, "--end") if end else None,
            "duration_minutes": minutes,
            "gpu_ids": gpu_ids,
            "gpu_count": gpu_count,
            "priority": priority.value if priority else None,
            "label": label,
        }
        if until is not None:
            from procplan.cli.weekly import book_weekly, series_until

            repeat = series_until(begin, until)
            book_weekly(client, node, request, repeat, dry_run=dry_run, as_json=as_json)
            return
        answer = _book_call(client, dry_run, node, **request)
    _print_booked(answer, dry_run=dry_run, as_json=as_json)


def _print_booked(answer: dict[str, Any], *, dry_run: bool, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    if dry_run:
        typer.echo(f"Would book {preview_summary(answer)} (nothing booked: --dry-run)")
    else:
        typer.echo(f"Booked {booking_summary(answer.get('booking') or {})}")
    for job in answer.get("conflicts_with_jobs") or []:
        warn(preempted_line(job))


def bookings(
    all_users: Annotated[bool, typer.Option("--all", help="Everyone's bookings")] = False,
    node: Annotated[str | None, typer.Option(help="Only this node id")] = None,
    gpu: Annotated[str | None, typer.Option(help="Only bookings holding this GPU id")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's bookings")] = None,
    status: Annotated[StatusChoice | None, typer.Option(help="Only this status")] = None,
    start: Annotated[
        str | None, typer.Option(help="Overlapping from (same forms as book --start)")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Overlapping until (same forms as book --start)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows")] = 100,
    as_json: JsonOption = False,
    fmt: FormatOption = None,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """List bookings: yours by default, everyone's with --all."""
    chosen = output_format(as_json, fmt)
    begin = instant_arg(start, "--start") if start else None
    finish = instant_arg(end, "--end") if end else None
    with connect(url, raw=chosen is OutputFormat.JSON, act_as=act_as) as client:
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
    if chosen is OutputFormat.JSON:
        typer.echo(json.dumps(page, indent=2))
        return
    rows = page.get("bookings") or []
    if chosen is OutputFormat.CSV:
        print_csv(bookings_table(rows))
        return
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
    end: Annotated[str | None, typer.Option(help="New end, like book --end (may shorten)")] = None,
    by: Annotated[str | None, typer.Option(help="Add this to the current end: 1h, 30m")] = None,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Move the end of a booking: --end sets it, --by adds to it."""
    if (end is None) == (by is None):
        usage_error("give exactly one of --end or --by", "--end / --by")
    fixed_end = instant_arg(end, "--end") if end else None
    delta = duration_arg(by, "--by") if by else timedelta()
    with connect(url, act_as=act_as) as client:
        if fixed_end is None:
            current_end = client.bookings.get(booking_id).get("end")
            fixed_end = parse_instant(str(current_end), utc_now()) + delta
        booking = client.bookings.set_end(booking_id, fixed_end)
    typer.echo(f"Updated {booking_summary(booking)}")
