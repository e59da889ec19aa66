"""``procplan report`` (like Slurm's ``sreport``) and ``procplan history`` (like ``sacct``).

Both print what the server computed (``/api/v1/usage/...``; the rules of "used", "idle" and
"unbooked" are in ``core.usage``) as a Rich table, CSV for spreadsheets, or the raw JSON.
``efficiency_line`` is the ``seff``-like line ``procplan job ID`` adds.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from procplan.cli.common import UrlOption, connect, console, usage_error, utc_now
from procplan.cli.durations import display_zone, parse_instant, zone_name
from procplan.cli.format import short_time
from procplan.client import ApiError, ProcPlanClient
from procplan.present import cell

Payload = Mapping[str, Any]


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class By(StrEnum):
    USER = "user"
    TENANT = "tenant"
    NODE = "node"


FormatOption = Annotated[
    Format, typer.Option("--format", "-o", help="table, csv or json", case_sensitive=False)
]
StartOption = Annotated[
    str | None,
    typer.Option(
        "--start",
        help="From (ISO 8601, 'mon 09:00', '+1d'...; local if no zone); default 7 days ago",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Same as --format json")]
EndOption = Annotated[str | None, typer.Option("--end", help="Until (ISO 8601); default now")]

# (column title, key in the row, how to show it)
REPORT_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("booked GPU-h", "booked_gpu_hours", lambda v: f"{v:.2f}"),
    ("used GPU-h", "used_gpu_hours", lambda v: f"{v:.2f}"),
    ("idle GPU-h", "idle_gpu_hours", lambda v: f"{v:.2f}"),
    ("idle %", "idle_fraction", lambda v: "-" if v is None else f"{100 * v:.0f}%"),
    ("job GPU-h", "job_gpu_hours", lambda v: f"{v:.2f}"),
    ("unbooked GPU-h", "unbooked_gpu_hours", lambda v: f"{v:.2f}"),
    ("jobs", "jobs", str),
    ("mean wait", "mean_wait_s", lambda v: "-" if v is None else _duration(float(v))),
)
HISTORY_FIELDS = (
    "id", "name", "user", "tenant_id", "state", "gpu_count", "nodes", "submitted_at",
    "started_at", "ended_at", "wait_s", "wall_s", "gpu_hours", "exit_code",
)  # fmt: skip


def _duration(seconds: float) -> str:
    """``45s``, ``12m``, ``3h05m`` or ``2d04h``: short enough for a table cell."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _iso(text: str | None, option: str) -> str | None:
    if text is None:
        return None
    try:
        moment: datetime = parse_instant(text, utc_now(), display_zone())
    except ValueError as exc:
        usage_error(str(exc), option)
    return moment.isoformat()


def _format(fmt: Format, as_json: bool) -> Format:
    """``--json`` is ``--format json``; with another --format it is a usage error."""
    if as_json and fmt not in (Format.TABLE, Format.JSON):
        usage_error(f"give either --json or --format {fmt.value}, not both", "--json / --format")
    return Format.JSON if as_json else fmt


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def report(
    by: Annotated[By, typer.Option("--by", help="user, tenant or node", case_sensitive=False)] = (
        By.USER
    ),
    start: StartOption = None,
    end: EndOption = None,
    fmt: FormatOption = Format.TABLE,
    as_json: JsonFlag = False,
    booking: Annotated[
        int | None, typer.Option("--booking", help="Only this booking: booked, used, idle")
    ] = None,
    url: UrlOption = None,
) -> None:
    """GPU-hours booked, used, idle while booked, run by jobs and used without booking; jobs
    started and their mean queue wait — per user, tenant or node (like sreport)."""
    fmt = _format(fmt, as_json)
    if booking is not None:
        _booking_report(booking, fmt, url)
        return
    begin, until = _iso(start, "--start"), _iso(end, "--end")
    with connect(url) as client:
        answer = client.usage.report(by.value, begin, until)
    if fmt is Format.JSON:
        typer.echo(json.dumps(answer, indent=2))
        return
    key = str(answer.get("by", by.value))
    rows = [*answer.get("rows", []), {key: "TOTAL", **answer.get("total", {})}]
    if fmt is Format.CSV:
        header = [key, *(k for _, k, _ in REPORT_COLUMNS), "wait_s"]
        _csv(header, [[r.get(k) for k in header] for r in rows])
        return
    table = Table(
        title=f"Usage by {key}, {short_time(answer.get('start'))} – "
        f"{short_time(answer.get('until'))} {zone_name()} "
        f"(busy: mean utilization ≥ {answer.get('busy_threshold_pct')}%)"
    )
    table.add_column(key)
    for title, _, _ in REPORT_COLUMNS:
        table.add_column(title, justify="right")
    for row in rows:
        table.add_row(
            cell(row.get(key)), *(cell(show(row.get(k, 0))) for _, k, show in REPORT_COLUMNS)
        )
    console().print(table)


def _booking_report(booking_id: int, fmt: Format, url: str | None) -> None:
    with connect(url) as client:
        answer = client.usage.booking(booking_id)
    if fmt is Format.JSON:
        typer.echo(json.dumps(answer, indent=2))
        return
    idle = answer.get("idle_fraction")
    if fmt is Format.CSV:
        keys = ("booking_id", "booked_gpu_hours", "used_gpu_hours", "idle_gpu_hours")
        _csv([*keys, "idle_fraction"], [[*(answer.get(k) for k in keys), idle]])
        return
    typer.echo(
        f"Booking {answer.get('booking_id')}: {answer.get('booked_gpu_hours', 0):.2f} GPU-h "
        f"booked until {short_time(answer.get('until'))} {zone_name()}, "
        f"{answer.get('used_gpu_hours', 0):.2f} used, {answer.get('idle_gpu_hours', 0):.2f} "
        f"idle ({'-' if idle is None else f'{100 * idle:.0f}%'})"
    )


class State(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"
    LOST = "lost"


def history(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user's jobs")] = None,
    state: Annotated[
        list[State] | None, typer.Option("--state", "-s", help="Only these states (repeatable)")
    ] = None,
    start: StartOption = None,
    end: EndOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 100,
    fmt: FormatOption = Format.TABLE,
    as_json: JsonFlag = False,
    url: UrlOption = None,
) -> None:
    """Finished jobs, newest first, with wait, wall time and GPU-hours (like sacct)."""
    fmt = _format(fmt, as_json)
    begin, until = _iso(start, "--start"), _iso(end, "--end")
    states = ",".join(s.value for s in state) if state else None
    with connect(url) as client:
        answer = client.usage.finished(user=user, state=states, start=begin, end=until, limit=limit)
    jobs: list[Payload] = list(answer.get("jobs", []))
    if fmt is Format.JSON:
        typer.echo(json.dumps(jobs, indent=2))
        return
    if fmt is Format.CSV:
        _csv(HISTORY_FIELDS, [[_csv_value(j.get(k)) for k in HISTORY_FIELDS] for j in jobs])
        return
    if not jobs:
        typer.echo("No finished jobs in that period.")
        return
    table = Table()
    for title in ("id", "name", "user", "state", "GPUs", "nodes", "ended", "wait", "wall"):
        table.add_column(title)
    table.add_column("GPU-h", justify="right")
    table.add_column("exit", justify="right")
    for job in jobs:
        table.add_row(
            cell(job.get("id")),
            cell(job.get("name")),
            cell(job.get("user")),
            cell(job.get("state")),
            cell(job.get("gpu_count")),
            cell(",".join(job.get("nodes") or [])),
            cell(short_time(job.get("ended_at"))),
            cell(_maybe_duration(job.get("wait_s"))),
            cell(_maybe_duration(job.get("wall_s"))),
            cell(f"{job.get('gpu_hours', 0):.2f}"),
            cell("" if job.get("exit_code") is None else job.get("exit_code")),
        )
    console().print(table)


def _maybe_duration(value: object) -> str:
    return "-" if not isinstance(value, int | float) else _duration(float(value))


def _csv_value(value: object) -> object:
    return ";".join(map(str, value)) if isinstance(value, list) else value


def job_usage(client: ProcPlanClient, job_id: str, started: bool) -> Payload | None:
    """The job's usage figures, or ``None`` when it never ran or the server has no usage
    route (an older server: the job's details are still worth showing)."""
    if not started:
        return None
    try:
        return client.usage.job(job_id)
    except ApiError:
        return None


def efficiency_line(usage: Payload) -> str:
    """``seff`` in one line: GPU-hours, wall time, mean/peak utilization and memory."""

    def pct(key: str) -> str:
        value = usage.get(key)
        return "-" if value is None else f"{value:.0f}%"

    def mib(key: str) -> str:
        value = usage.get(key)
        return "-" if value is None else f"{value / 1024:.1f} GiB"

    return (
        f"Efficiency: {usage.get('gpu_hours', 0):.2f} GPU-h over "
        f"{_duration(float(usage.get('wall_s') or 0))} wall; "
        f"GPU util mean {pct('utilization_mean_pct')}"
        f", peak {pct('utilization_peak_pct')}; memory mean {mib('memory_mean_mb')}, peak "
        f"{mib('memory_peak_mb')}"
    )
