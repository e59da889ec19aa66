"""How the ``procplan`` job commands show job objects: queue table, detail lines, status line.

Pure functions of typed jobs (``client.Job``, parsed once by the client from the ADR 0005 wire
object) and an explicit ``now``, so they are tested without a server or a clock. They never
recompute what the server decided (reason, position, estimated start): they only phrase it and
turn instants into spans people read at a glance ("in 12m").
Server text reaches the terminal only through ``procplan.present``: table cells are sanitised,
capped ``Text`` (never Rich markup), detail lines are sanitised in full.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime

from rich.table import Table
from rich.text import Text

from procplan.cli.durations import zone_name
from procplan.cli.format import short_time
from procplan.client import Job
from procplan.client.answers import PriorityRow
from procplan.present import cell, terminal_text
from procplan.present.jobs import (
    elapsed,
    eta,
    gpus_text,
    human_span,
    indices_text,
    node_text,
    relative,
    until,
)

STATE_STYLE = {
    "pending": "yellow",
    "running": "green",
    "completed": "dim",
    "failed": "red",
    "cancelled": "dim",
    "preempted": "magenta",
    "lost": "red",
}
PRIORITY_COLUMNS = (
    "POS", "ID", "USER", "TENANT", "PRIORITY", "AGE", "FAIRSHARE", "SIZE", "LENGTH", "EFFECTIVE",
)  # fmt: skip
QUEUE_COLUMNS = (
    "ID", "USER", "TENANT", "STATE", "GPUS", "NODE", "REASON", "ETA", "TIME", "NAME",
)  # fmt: skip


def command_text(command: Sequence[str]) -> str:
    """A command as a shell would show it."""
    return shlex.join(command)


def status_line(job: Job, now: datetime) -> str:
    """The one line ``procplan run`` keeps updating while its job waits (or once it starts)."""
    if job.state == "running":
        where = node_text(job) or "?"
        return f"job {job.id} running on {where} (GPUs {indices_text(job) or 'none'})"
    if job.state != "pending":
        return f"job {job.id} {job.state}"
    parts = [f"job {job.id} pending"]
    if job.queue_position:
        parts.append(f"position {job.queue_position}")
    parts.append(job.reason_text or job.reason or "waiting")
    waits = waits_text(job)
    if waits:
        parts.append(f"in the way: {waits}")
    start = job.estimated_start
    if start is not None:
        parts.append(f"estimated start {until(start, now)} ({_clock(start)})")
    return " · ".join(parts)


def waits_text(job: Job) -> str:
    """What a pending job waits for, as the planner saw it: "job 12, job 13, booking 5"."""
    names = [f"job {j}" for j in job.waits_for_jobs]
    names += [f"booking {b}" for b in job.waits_for_bookings]
    return ", ".join(names)


def _clock(moment: datetime) -> str:
    return f"{short_time(moment.isoformat())} {zone_name()}"


def _styled_state(state: object) -> Text:
    return cell(state or "", style=STATE_STYLE.get(str(state), ""))


def _queue_key(job: Job) -> tuple[int, int, int]:
    """Pending jobs by their place in the queue (unplaced ones after them), then running
    jobs, then the rest; the server's (newest first) order within each."""
    if job.state == "pending":
        place = job.queue_position
        return (0, 0, place) if place > 0 else (0, 1, 0)
    return (1 if job.state == "running" else 2, 0, 0)


def queue_order(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` as ``procplan queue`` lists them: the queue in order, then what runs."""
    return sorted(jobs, key=_queue_key)


def queue_table(jobs: Sequence[Job], now: datetime) -> Table:
    """squeue's view in queue order (``queue_order``): one row per job; every cell a
    sanitised, capped ``Text`` (no markup)."""
    table = Table(title="Jobs", title_justify="left")
    for column in QUEUE_COLUMNS:
        table.add_column(column, justify="right" if column == "ID" else "left")
    for job in queue_order(jobs):
        pending = job.state == "pending"
        table.add_row(
            cell(job.id),
            cell(job.user),
            cell(job.tenant_id),
            _styled_state(job.state),
            cell(gpus_text(job)),
            cell(node_text(job, capped=True), limit=None),
            cell(job.reason or "") if pending else "",
            eta(job, now),
            elapsed(job, now),
            cell(job.name),
        )
    return table


def _when(moment: datetime | None, now: datetime, ahead: bool = False) -> str:
    """``2026-11-24 12:12 UTC (in 2 h 12 min)``; ``ahead``: an expected instant, which reads
    "now" once due rather than "3 s ago"."""
    if moment is None:
        return ""
    span = until(moment, now) if ahead else relative(moment, now)
    return f"{short_time(moment.isoformat())} {zone_name()} ({span})"


def _allocation(job: Job) -> str:
    gpus = ", ".join(job.allocated_gpus)
    if not gpus:
        return ""
    indices = indices_text(job)
    return f"{node_text(job)}: {gpus}" + (f" (indices {indices})" if indices else "")


def _limit(job: Job) -> str:
    limit = job.time_limit_s
    return human_span(limit) if limit is not None else "none (open-ended)"


def _reason(job: Job) -> str:
    if job.state != "pending" or not job.reason:
        return ""
    return f"{job.reason} — {job.reason_text}" if job.reason_text else job.reason


def _array(job: Job) -> str:
    if job.array_id is None:
        return ""
    index = "" if job.array_index is None else job.array_index
    return f"{job.array_id}[{index}]"


def _client(job: Job) -> str:
    if job.pid is None:
        return ""
    return f"pid {job.pid} on {job.host or '?'}"


def _flag(value: object) -> str:
    return "yes" if value else ""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def detail_lines(job: Job, now: datetime) -> list[str]:
    """``Key: value`` lines of everything a person asks about one job; empty values skipped.
    Values are shown whole but sanitised: one value stays on its line, whatever it holds."""
    pending = job.state == "pending"
    rows = [
        ("Job", job.id),
        ("Name", job.name),
        ("User", job.user),
        ("Tenant", job.tenant_id),
        ("Kind", job.kind),
        ("State", job.state),
        ("Reason", _reason(job)),
        ("Position", _text(job.queue_position) if pending else ""),
        ("Estimated start", _when(job.estimated_start, now, ahead=True)),
        ("Waiting for", waits_text(job) if pending else ""),
        ("Priority", _text(job.priority)),
        ("GPUs", gpus_text(job)),
        ("GPU memory", f"{job.gpu_memory_mb} MiB" if job.gpu_memory_mb else ""),
        ("Nodes", _text(job.nodes)),
        ("Time limit", _limit(job)),
        ("Node constraint", _text(job.node_id)),
        ("Booking", _text(job.booking_id)),
        ("Submitted", _when(job.submitted_at, now)),
        ("Started", _when(job.started_at, now)),
        ("Completed", _when(job.completed_at, now)),
        ("Elapsed", elapsed(job, now)),
        ("Allocation", _allocation(job)),
        ("Borrowed", _flag(job.borrowed)),
        ("Preempt at", _when(job.preempt_at, now)),
        ("Command", command_text(job.command)),
        ("Workdir", _text(job.workdir)),
        ("Stdout", _text(job.stdout)),
        ("Stderr", _text(job.stderr)),
        ("Array", _array(job)),
        ("Client", _client(job)),
        ("Exit code", _text(job.exit_code)),
        ("Message", _text(job.message)),
    ]
    return [f"{key}: {terminal_text(value)}" for key, value in rows if value]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def priority_table(rows: Sequence[PriorityRow]) -> Table:
    """sprio's view: each pending job's effective priority and its weighted parts, in queue
    order; ``PRIORITY`` is the class (job priority + tenant tier). Cells are sanitised."""
    table = Table(title="Pending jobs by effective priority", title_justify="left")
    for column in PRIORITY_COLUMNS:
        text_column = column in ("USER", "TENANT")
        table.add_column(column, justify="left" if text_column else "right")
    for row in rows:
        table.add_row(
            str(row.position) if row.position else "",
            cell(row.job_id),
            cell(row.user),
            cell(row.tenant),
            _text(row.priority),
            _number(row.age),
            _number(row.fairshare),
            _number(row.size),
            _number(row.length),
            _number(row.effective),
        )
    return table
