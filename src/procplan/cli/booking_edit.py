"""``procplan edit BOOKING_ID``: move, resize, regroup, relabel or reprioritise a booking.

One ``PATCH /api/v1/bookings/{id}`` (ADR 0024) with what the command line names; the rest of
the booking stays. The server decides everything (a started booking keeps its start and GPUs,
conflicts name who is in the way and the next free window), so its message is what users see.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from procplan.cli.bookings import (
    BookingId,
    PriorityChoice,
    duration_arg,
    instant_arg,
    resolve_gpus,
)
from procplan.cli.common import (
    AsOption,
    JsonOption,
    UrlOption,
    connect,
    usage_error,
    utc_now,
    warn,
)
from procplan.cli.durations import parse_instant
from procplan.cli.format import booking_summary, preempted_line
from procplan.client import ProcPlanClient


def edit(
    booking_id: BookingId,
    start: Annotated[
        str | None, typer.Option(help="New start, like book --start (not once it has started)")
    ] = None,
    end: Annotated[str | None, typer.Option(help="New end, like book --end")] = None,
    duration: Annotated[
        str | None,
        typer.Option("--duration", "-d", help="New length from the (new) start: 90m, 2h"),
    ] = None,
    gpu: Annotated[
        list[str] | None,
        typer.Option(
            "--gpu", help="The GPUs it holds instead: id or the node's GPU index (repeatable)"
        ),
    ] = None,
    label: Annotated[str | None, typer.Option(help="New calendar text")] = None,
    priority: Annotated[PriorityChoice | None, typer.Option(help="New priority")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Change a booking: move it (--start, --end or --duration), change its GPUs, label or
    priority. A booking that has started keeps its start and GPUs."""
    if end is not None and duration is not None:
        usage_error("give either --end or --duration, not both", "--end / --duration")
    if all(v is None for v in (start, end, duration, gpu, label, priority)):
        usage_error("say what to change: --start, --end, --duration, --gpu, --label, --priority")
    begin = instant_arg(start, "--start") if start else None
    finish = instant_arg(end, "--end") if end else None
    length = duration_arg(duration, "--duration") if duration else None
    with connect(url, raw=as_json, act_as=act_as) as client:
        current: dict[str, Any] | None = None
        if (length is not None and begin is None) or gpu:
            current = client.bookings.get(booking_id)
        if length is not None:
            finish = (begin or _start_of(current)) + length
        answer = client.bookings.edit(
            booking_id,
            start=begin,
            end=finish,
            gpu_ids=_gpu_ids(client, current, gpu),
            label=label,
            priority=priority.value if priority else None,
        )
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    typer.echo(f"Updated {booking_summary(answer)}")
    for job in answer.get("conflicts_with_jobs") or []:
        warn(preempted_line(job))


def _start_of(booking: dict[str, Any] | None) -> datetime:
    """The booking's current start (``--duration`` without ``--start`` counts from it)."""
    return parse_instant(str((booking or {}).get("start")), utc_now())


def _gpu_ids(
    client: ProcPlanClient, booking: dict[str, Any] | None, wanted: list[str] | None
) -> list[str] | None:
    """``--gpu`` values as ids of the booking's node (indices resolved as ``book`` does)."""
    if not wanted or booking is None:
        return None
    node_id = str(booking.get("node_id"))
    return resolve_gpus(node_id, client.nodes.get(node_id), wanted)
