"""Job fields as short terminal text, shared by ``procplan queue``/``job`` and ``procplan top``.

Pure functions over typed jobs: the client parses each job object once (``client.answers.Job``)
and these read its fields. ``present`` imports neither the HTTP client nor the CLI, so the
fields they read are named by the ``JobFacts`` protocol, which the client's ``Job`` satisfies.
Node names may be anyone's text, so they go through ``joined`` when capped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from procplan.core.timeutil import aware_moment
from procplan.present.safe import joined

NONE = "—"


class JobFacts(Protocol):
    """What the renderers here read of a job (``client.answers.Job`` has all of it)."""

    @property
    def state(self) -> str: ...
    @property
    def gpu_count(self) -> int | None: ...
    @property
    def gpu_type(self) -> str | None: ...
    @property
    def node_ids(self) -> Sequence[str]: ...
    @property
    def node_name(self) -> str | None: ...
    @property
    def gpu_indices(self) -> Sequence[int]: ...
    @property
    def submitted_at(self) -> datetime | None: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def completed_at(self) -> datetime | None: ...
    @property
    def estimated_start(self) -> datetime | None: ...


def human_span(seconds: float) -> str:
    """A compact length: ``45s``, ``12m``, ``1h05m``, ``2d03h`` (two units at most)."""
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def relative(value: object, now: datetime) -> str:
    """``in 12m``, ``3m ago`` or ``now`` for an instant (aware datetime or wire text); ``—``
    when there is none."""
    moment = aware_moment(value)
    if moment is None:
        return NONE
    delta = (moment - now).total_seconds()
    if abs(delta) < 30:
        return "now"
    return f"in {human_span(delta)}" if delta > 0 else f"{human_span(-delta)} ago"


def gpus_text(job: JobFacts) -> str:
    """``2`` or ``2 A100``; the kind only when the job asked for one."""
    count = "" if job.gpu_count is None else str(job.gpu_count)
    return f"{count} {job.gpu_type}" if job.gpu_type else count


def node_text(job: JobFacts, capped: bool = False) -> str:
    """Where it runs (``node-a`` or ``node-a,node-b``); empty while it has no allocation.
    ``capped`` sanitises and shortens each node name (for table cells)."""
    ids = job.node_ids or [job.node_name or ""]
    if capped:
        return joined(ids, ",")
    return ",".join(ids)


def elapsed(job: JobFacts, now: datetime) -> str:
    """Run time for running and finished jobs, time waited for pending ones."""
    state = job.state
    started = job.submitted_at if state == "pending" else job.started_at
    ended = now if state in ("pending", "running") else job.completed_at
    if started is None or ended is None:
        return ""
    return human_span((ended - started).total_seconds())


def eta(job: JobFacts, now: datetime) -> str:
    """Estimated start of a pending job, relative (``in 12m``); blank for the others."""
    if job.state != "pending":
        return ""
    return relative(job.estimated_start, now)


def indices_text(job: JobFacts) -> str:
    return ",".join(str(i) for i in job.gpu_indices)
