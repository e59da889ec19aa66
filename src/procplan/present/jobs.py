"""Job fields as short terminal text, shared by ``procplan queue``/``job`` and ``procplan top``.

Pure functions over the job objects the server sends (``/api/v1/jobs``): ids, GPUs, nodes,
spans of time. Node names may be anyone's text, so they go through ``joined`` when capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from procplan.present.safe import joined

Payload = Mapping[str, Any]

NONE = "—"


def parse_moment(value: object) -> datetime | None:
    """An aware datetime from wire ISO 8601 text; ``None`` for null or unparsable values."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


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
    """``in 12m``, ``3m ago`` or ``now`` for a wire instant; ``—`` when there is none."""
    moment = parse_moment(value)
    if moment is None:
        return NONE
    delta = (moment - now).total_seconds()
    if abs(delta) < 30:
        return "now"
    return f"in {human_span(delta)}" if delta > 0 else f"{human_span(-delta)} ago"


def job_id(job: Payload) -> str:
    """The id as text; the Go dialect also calls it ``job_id``."""
    return str(job.get("id", job.get("job_id", "?")))


def gpus_text(job: Payload) -> str:
    """``2`` or ``2 A100``; the kind only when the job asked for one."""
    count = job.get("gpu_count", "")
    kind = job.get("gpu_type")
    return f"{count} {kind}" if kind else str(count)


def node_text(job: Payload, capped: bool = False) -> str:
    """Where it runs (``node-a`` or ``node-a,node-b``); empty while it has no allocation.
    ``capped`` sanitises and shortens each node name (for table cells)."""
    ids = job.get("node_ids") or [job.get("node_name") or ""]
    if capped:
        return joined(ids, ",")
    return ",".join(str(n) for n in ids)


def elapsed(job: Payload, now: datetime) -> str:
    """Run time for running and finished jobs, time waited for pending ones."""
    state = job.get("state")
    started = parse_moment(job.get("submitted_at" if state == "pending" else "started_at"))
    ended = now if state in ("pending", "running") else parse_moment(job.get("completed_at"))
    if started is None or ended is None:
        return ""
    return human_span((ended - started).total_seconds())


def eta(job: Payload, now: datetime) -> str:
    """Estimated start of a pending job, relative (``in 12m``); blank for the others."""
    if job.get("state") != "pending":
        return ""
    return relative(job.get("estimated_start"), now)


def indices_text(job: Payload) -> str:
    return ",".join(str(i) for i in job.get("gpu_indices") or [])
