"""How the ``procplan`` job commands show job objects: queue table, detail lines, status line.

Pure functions of the wire dicts (ADR 0005) and an explicit ``now``, so they are tested without
a server or a clock. They never recompute what the server decided (reason, position, estimated
start): they only phrase it and turn instants into spans people read at a glance ("in 12m").
Server text reaches the terminal only through ``procplan.present``: table cells are sanitised,
capped ``Text`` (never Rich markup), detail lines are sanitised in full.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from procplan.cli.format import short_time
from procplan.present import cell, terminal_text
from procplan.present.jobs import (
    elapsed,
    eta,
    gpus_text,
    human_span,
    indices_text,
    job_id,
    node_text,
    parse_moment,
    relative,
)

Payload = Mapping[str, Any]

STATE_STYLE = {
    "pending": "yellow",
    "running": "green",
    "completed": "dim",
    "failed": "red",
    "cancelled": "dim",
    "preempted": "magenta",
    "lost": "red",
}
QUEUE_COLUMNS = (
    "ID", "USER", "TENANT", "STATE", "GPUS", "NODE", "REASON", "ETA", "TIME", "NAME",
)  # fmt: skip


def command_text(command: object) -> str:
    """A command list as a shell would show it; text as received."""
    if isinstance(command, list):
        return shlex.join(str(part) for part in command)
    return "" if command is None else str(command)


def status_line(job: Payload, now: datetime) -> str:
    """The one line ``procplan run`` keeps updating while its job waits (or once it starts)."""
    ident = job_id(job)
    state = job.get("state")
    if state == "running":
        where = node_text(job) or "?"
        return f"job {ident} running on {where} (GPUs {indices_text(job) or 'none'})"
    if state != "pending":
        return f"job {ident} {state}"
    parts = [f"job {ident} pending"]
    if job.get("queue_position"):
        parts.append(f"position {job['queue_position']}")
    parts.append(str(job.get("reason_text") or job.get("reason") or "waiting"))
    start = parse_moment(job.get("estimated_start"))
    if start is not None:
        parts.append(f"estimated start {relative(job['estimated_start'], now)} ({_clock(start)})")
    return " · ".join(parts)


def _clock(moment: datetime) -> str:
    return short_time(moment.isoformat()) + " UTC"


def _styled_state(state: object) -> Text:
    return cell(state or "", style=STATE_STYLE.get(str(state), ""))


def queue_table(jobs: Sequence[Payload], now: datetime) -> Table:
    """squeue's view: one row per job; every cell a sanitised, capped ``Text`` (no markup)."""
    table = Table(title="Jobs", title_justify="left")
    for column in QUEUE_COLUMNS:
        table.add_column(column, justify="right" if column == "ID" else "left")
    for job in jobs:
        pending = job.get("state") == "pending"
        table.add_row(
            cell(job_id(job)),
            cell(job.get("user") or ""),
            cell(job.get("tenant_id") or ""),
            _styled_state(job.get("state")),
            cell(gpus_text(job)),
            cell(node_text(job, capped=True), limit=None),
            cell(job.get("reason") or "") if pending else "",
            eta(job, now),
            elapsed(job, now),
            cell(job.get("name") or ""),
        )
    return table


def _when(value: object, now: datetime) -> str:
    moment = parse_moment(value)
    return f"{short_time(value)} UTC ({relative(value, now)})" if moment else ""


def _allocation(job: Payload) -> str:
    gpus = ", ".join(str(g) for g in job.get("allocated_gpus") or [])
    if not gpus:
        return ""
    indices = indices_text(job)
    return f"{node_text(job)}: {gpus}" + (f" (indices {indices})" if indices else "")


def _limit(job: Payload) -> str:
    limit = job.get("time_limit_s")
    return human_span(limit) if isinstance(limit, int) else "none (open-ended)"


def _reason(job: Payload) -> str:
    if job.get("state") != "pending" or not job.get("reason"):
        return ""
    text = job.get("reason_text")
    return f"{job['reason']} — {text}" if text else str(job["reason"])


def _array(job: Payload) -> str:
    if job.get("array_id") is None:
        return ""
    return f"{job['array_id']}[{job.get('array_index', '')}]"


def _client(job: Payload) -> str:
    if job.get("pid") is None:
        return ""
    return f"pid {job['pid']} on {job.get('host') or '?'}"


def _flag(value: object) -> str:
    return "yes" if value else ""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def detail_lines(job: Payload, now: datetime) -> list[str]:
    """``Key: value`` lines of everything a person asks about one job; empty values skipped.
    Values are shown whole but sanitised: one value stays on its line, whatever it holds."""
    rows = [
        ("Job", job_id(job)),
        ("Name", _text(job.get("name"))),
        ("User", _text(job.get("user"))),
        ("Tenant", _text(job.get("tenant_id"))),
        ("Kind", _text(job.get("kind"))),
        ("State", _text(job.get("state"))),
        ("Reason", _reason(job)),
        ("Position", _text(job.get("queue_position")) if job.get("state") == "pending" else ""),
        ("Estimated start", _when(job.get("estimated_start"), now)),
        ("Priority", _text(job.get("priority"))),
        ("GPUs", gpus_text(job)),
        ("GPU memory", f"{job['gpu_memory_mb']} MiB" if job.get("gpu_memory_mb") else ""),
        ("Nodes", _text(job.get("nodes"))),
        ("Time limit", _limit(job)),
        ("Node constraint", _text(job.get("node_id"))),
        ("Booking", _text(job.get("booking_id"))),
        ("Submitted", _when(job.get("submitted_at"), now)),
        ("Started", _when(job.get("started_at"), now)),
        ("Completed", _when(job.get("completed_at"), now)),
        ("Elapsed", elapsed(job, now)),
        ("Allocation", _allocation(job)),
        ("Borrowed", _flag(job.get("borrowed"))),
        ("Preempt at", _when(job.get("preempt_at"), now)),
        ("Command", command_text(job.get("command"))),
        ("Workdir", _text(job.get("workdir"))),
        ("Stdout", _text(job.get("stdout"))),
        ("Stderr", _text(job.get("stderr"))),
        ("Array", _array(job)),
        ("Client", _client(job)),
        ("Exit code", _text(job.get("exit_code"))),
        ("Message", _text(job.get("message"))),
    ]
    return [f"{key}: {terminal_text(value)}" for key, value in rows if value]
