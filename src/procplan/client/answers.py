"""Typed answers of the job routes: the server's JSON parsed once, here, into frozen objects.

The job commands, ``procplan run`` and ``procplan top`` all read the same job object (ADR 0005,
``wire/jobs.py``), and each used to pick at the dict again: ``job.get("id",
job.get("job_id"))``, ISO text parsed where it was shown, an answer unwrapped from ``"job"``
or not. Parsing once means one set of rules for every front end: ids are text, instants are
aware datetimes (``None`` when absent or unparsable), lists are tuples, numbers are ints or
``None``. Parsing never fails on an odd value (a server of another version, a hostile one):
the value reads as absent, and ``raw`` keeps the object exactly as sent for ``--json``.

The wire format does not change: these classes are only read from answers, never sent.
Other answers (bookings, nodes, tenants, accounts) stay plain dicts: their renderers show
them as sent and gain nothing from a second set of names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from procplan.core.timeutil import aware_moment

Payload = Mapping[str, Any]

HEADER_SIZE = "X-Log-Size"
HEADER_TRUNCATED = "X-Log-Truncated"
HEADER_STATE = "X-Job-State"


# -- tolerant readers of one wire value ------------------------------------------------------


def text_of(value: object) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


def int_of(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def texts_of(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(item) for item in value if item is not None)


def ints_of(value: object) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(item for item in value if int_of(item) is not None)


# -- jobs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One job as the server rendered it; fields are named as on the wire (``completed_at``,
    ``gpu_type``, ``tenant_id``) so that a reader of ``COMPAT.md`` finds them."""

    id: str
    state: str = ""
    name: str = ""
    user: str = ""
    tenant_id: str = ""
    kind: str = ""
    priority: int | None = None
    gpu_count: int | None = None
    nodes: int | None = None
    gpu_type: str | None = None
    gpu_memory_mb: int | None = None
    time_limit_s: int | None = None
    node_id: str | None = None
    booking_id: int | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    node_name: str | None = None
    node_ids: tuple[str, ...] = ()
    allocated_gpus: tuple[str, ...] = ()
    gpu_indices: tuple[int, ...] = ()
    reason: str | None = None
    reason_text: str | None = None
    queue_position: int = 0
    estimated_start: datetime | None = None
    waits_for_jobs: tuple[str, ...] = ()  # ``waits_for`` on the wire: who is in its way
    waits_for_bookings: tuple[int, ...] = ()
    borrowed: bool = False
    preempt_at: datetime | None = None
    exit_code: int | None = None
    command: tuple[str, ...] = ()
    workdir: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    array_id: str | None = None
    array_index: int | None = None
    pid: int | None = None
    host: str | None = None
    lease_expires_at: datetime | None = None
    message: str | None = None
    version: int | None = None
    raw: Payload = field(default_factory=dict, repr=False, compare=False)


def parse_job(payload: Payload) -> Job:
    """The job of an answer that either is one (``GET /jobs/{id}``, ``/wait``) or carries one
    under ``"job"`` (submit, release, cancel). The Go dialect's ``job_id`` stands in for a
    missing ``id``."""
    inner = payload.get("job")
    value: Payload = inner if isinstance(inner, Mapping) else payload
    get = value.get
    waits = get("waits_for")
    if not isinstance(waits, Mapping):
        waits = {}
    return Job(
        id=str(get("id", get("job_id", "?"))),
        state=text_of(get("state")) or "",
        name=text_of(get("name")) or "",
        user=text_of(get("user")) or "",
        tenant_id=text_of(get("tenant_id")) or "",
        kind=text_of(get("kind")) or "",
        priority=int_of(get("priority")),
        gpu_count=int_of(get("gpu_count")),
        nodes=int_of(get("nodes")),
        gpu_type=text_of(get("gpu_type")),
        gpu_memory_mb=int_of(get("gpu_memory_mb")),
        time_limit_s=int_of(get("time_limit_s")),
        node_id=text_of(get("node_id")),
        booking_id=int_of(get("booking_id")),
        submitted_at=aware_moment(get("submitted_at")),
        started_at=aware_moment(get("started_at")),
        completed_at=aware_moment(get("completed_at")),
        node_name=text_of(get("node_name")),
        node_ids=texts_of(get("node_ids")),
        allocated_gpus=texts_of(get("allocated_gpus")),
        gpu_indices=ints_of(get("gpu_indices")),
        reason=text_of(get("reason")),
        reason_text=text_of(get("reason_text")),
        queue_position=int_of(get("queue_position")) or 0,
        estimated_start=aware_moment(get("estimated_start")),
        waits_for_jobs=texts_of(waits.get("jobs")),
        waits_for_bookings=ints_of(waits.get("bookings")),
        borrowed=get("borrowed") is True,
        preempt_at=aware_moment(get("preempt_at")),
        exit_code=int_of(get("exit_code")),
        command=texts_of(get("command")),
        workdir=text_of(get("workdir")),
        stdout=text_of(get("stdout")),
        stderr=text_of(get("stderr")),
        array_id=text_of(get("array_id")),
        array_index=int_of(get("array_index")),
        pid=int_of(get("pid")),
        host=text_of(get("host")),
        lease_expires_at=aware_moment(get("lease_expires_at")),
        message=text_of(get("message")),
        version=int_of(get("version")),
        raw=value,
    )


@dataclass(frozen=True, slots=True)
class JobPage:
    """``GET /api/v1/jobs``: one page of jobs and how many match in all."""

    jobs: tuple[Job, ...]
    total: int

    @property
    def raw(self) -> list[Payload]:
        """The job objects as sent (``procplan queue --json``)."""
        return [job.raw for job in self.jobs]


def parse_job_page(payload: Payload) -> JobPage:
    listed = payload.get("jobs")
    items = listed if isinstance(listed, list) else []
    jobs = tuple(parse_job(item) for item in items if isinstance(item, Mapping))
    total = int_of(payload.get("total"))
    return JobPage(jobs, len(jobs) if total is None else total)


def float_of(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN reads as absent


@dataclass(frozen=True, slots=True)
class PriorityRow:
    """One pending job of ``GET /api/v1/queue/priority`` (``procplan sprio``): its place in
    the queue, the class (job priority + tenant tier) and the weighted factors."""

    job_id: str
    position: int = 0
    user: str = ""
    tenant: str = ""
    priority: int | None = None
    age: float | None = None
    fairshare: float | None = None
    size: float | None = None
    length: float | None = None
    effective: float | None = None
    raw: Payload = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class PriorityList:
    """The ranked pending jobs, how many matched, and the instant they were ranked at."""

    rows: tuple[PriorityRow, ...]
    total: int
    as_of: datetime | None = None

    @property
    def raw(self) -> list[Payload]:
        """The rows as sent (``procplan sprio --json``)."""
        return [row.raw for row in self.rows]


def parse_priority_row(value: Payload) -> PriorityRow:
    get = value.get
    return PriorityRow(
        job_id=str(get("job_id", "?")),
        position=int_of(get("position")) or 0,
        user=text_of(get("user")) or "",
        tenant=text_of(get("tenant")) or "",
        priority=int_of(get("priority")),
        age=float_of(get("age")),
        fairshare=float_of(get("fairshare")),
        size=float_of(get("size")),
        length=float_of(get("length")),
        effective=float_of(get("effective")),
        raw=value,
    )


def parse_priority_list(payload: Payload) -> PriorityList:
    listed = payload.get("jobs")
    items = listed if isinstance(listed, list) else []
    rows = tuple(parse_priority_row(item) for item in items if isinstance(item, Mapping))
    total = int_of(payload.get("total"))
    return PriorityList(
        rows, len(rows) if total is None else total, aware_moment(payload.get("as_of"))
    )


@dataclass(frozen=True, slots=True)
class Submitted:
    """``POST /api/v1/jobs``: the id to print, the array's ids, and the (first) job. A bare
    ``{"job_id"}`` (the Go shape) gives a pending job with only its id, so that a client
    waiting for it fetches the rest on its first wait."""

    job_id: str
    job: Job
    job_ids: tuple[str, ...] = ()
    array_id: str | None = None
    message: str | None = None


def parse_submitted(payload: Payload) -> Submitted:
    job_id = str(payload.get("job_id", "?"))
    inner = payload.get("job")
    job = parse_job(inner) if isinstance(inner, Mapping) else Job(id=job_id, state="pending")
    return Submitted(
        job_id=job_id,
        job=job,
        job_ids=texts_of(payload.get("job_ids")),
        array_id=text_of(payload.get("array_id")),
        message=text_of(payload.get("message")),
    )


@dataclass(frozen=True, slots=True)
class Lease:
    """``POST /api/v1/jobs/{id}/heartbeat``: may the command go on? ``preempt_at`` set or a
    state other than ``running`` mean it must stop."""

    state: str | None = None
    lease_expires_at: datetime | None = None
    preempt_at: datetime | None = None
    version: int | None = None


def parse_lease(payload: Payload) -> Lease:
    return Lease(
        state=text_of(payload.get("state")),
        lease_expires_at=aware_moment(payload.get("lease_expires_at")),
        preempt_at=aware_moment(payload.get("preempt_at")),
        version=int_of(payload.get("version")),
    )


# -- job logs --------------------------------------------------------------------------------


class LogChunk(NamedTuple):
    """One page of a job's stored log; unpacks as ``data, size, truncated, job_state``.

    ``size`` is every byte the server holds for the stream (not just this page), ``truncated``
    says the server stopped keeping bytes past its cap, ``job_state`` is the job's state when
    the page was read (``None`` if the server did not say).
    """

    data: bytes
    size: int
    truncated: bool
    job_state: str | None


def parse_log_headers(headers: Any, offset: int, data: bytes) -> LogChunk:
    """The ``LogChunk`` of an answer; tolerant of a missing or garbled header (a proxy may
    drop them): the size then counts what we have, ``truncated`` is false, the state unknown."""
    raw_size = headers.get(HEADER_SIZE)
    try:
        size = int(raw_size) if raw_size is not None else offset + len(data)
    except ValueError:
        size = offset + len(data)
    truncated = str(headers.get(HEADER_TRUNCATED) or "").strip().lower() in ("true", "1", "yes")
    state = headers.get(HEADER_STATE)
    return LogChunk(data, max(size, 0), truncated, state.strip() if state else None)
