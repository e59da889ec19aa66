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


SECONDS_UNDER_S = 90  # spans shorter than this are counted in seconds
FAR_S = 6 * 3600  # estimates further away than this read as a clock time


def span_text(seconds: float) -> str:
    """A length as people say it: ``45 s``, ``3 min``, ``2 h 10 min``, ``1 d 3 h``. Seconds
    under 90 s, then minutes (rounded to the nearest), hours and days; two units at most."""
    total = max(seconds, 0.0)
    if total < SECONDS_UNDER_S:
        return f"{int(total)} s"
    minutes = int(total / 60 + 0.5)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _future_span(delta: float) -> str:
    """A span ahead, counted up to the whole second (``in 1 s`` is not yet "now")."""
    return span_text(float(-int(-delta // 1)))


def relative(value: object, now: datetime) -> str:
    """``in 3 min``, ``12 min ago`` or ``now`` (within a second) for an instant (aware
    datetime or wire text); ``—`` when there is none."""
    moment = aware_moment(value)
    if moment is None:
        return NONE
    delta = (moment - now).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {_future_span(delta)}" if delta > 0 else f"{span_text(-delta)} ago"


def until(value: object, now: datetime) -> str:
    """An expected instant such as an estimated start: ``in 45 s``, ``in 2 h 10 min``, and
    ``now`` only once it is due (now or past: the job could start at any moment)."""
    moment = aware_moment(value)
    if moment is None:
        return NONE
    delta = (moment - now).total_seconds()
    return f"in {_future_span(delta)}" if delta > 0 else "now"


def estimate_text(value: object, now: datetime) -> str:
    """An estimate for a table cell: ``until`` up to six hours ahead, then the clock time in
    ``now``'s zone: ``at 14:05 UTC`` (today), ``at Tue 14:05 UTC`` (this week), else with the
    date (``at 2026-12-20 14:05 UTC``)."""
    moment = aware_moment(value)
    if moment is None or (moment - now).total_seconds() <= FAR_S:
        return until(moment, now)
    local = moment.astimezone(now.tzinfo)
    zone = local.tzname() or ""
    days = (local.date() - now.date()).days
    if days == 0:
        shown = f"{local:%H:%M}"
    elif days < 7:
        shown = f"{local:%a %H:%M}"
    else:
        shown = f"{local:%Y-%m-%d %H:%M}"
    return f"at {shown} {zone}".rstrip()


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
    """Estimated start of a pending job (``estimate_text``: ``in 12 min``, ``at 14:05 UTC``);
    blank for the others."""
    if job.state != "pending":
        return ""
    return estimate_text(job.estimated_start, now)


def indices_text(job: JobFacts) -> str:
    return ",".join(str(i) for i in job.gpu_indices)
