"""Notifications as values (issue #14, ADR 0012): what happened, to whom, in words.

A ``Note`` is written to the outbox in the transaction of the change that causes it and sent
later by one sender; its ``key`` names the event, so writing the same event twice (a cycle
that repeats a warning, a retried transaction) stores it once. The builders here turn core
objects into notes; they are pure (the caller passes the time and any log lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from procplan.core.jobs import Job, JobState
from procplan.core.model import Booking
from procplan.core.timeutil import Instant, to_datetime

__all__ = [
    "ADMIN_KINDS",
    "Note",
    "NoteKind",
    "booking_node_draining",
    "booking_soon",
    "estimate_moved",
    "foreign_process",
    "job_ended",
    "job_preempt_warning",
    "job_preempted",
    "job_started",
    "node_changed",
    "parse_kinds",
    "when_text",
]

LOG_TAIL_LINES = 10
ESTIMATE_MOVED_S = 30 * 60  # a queued job's estimate moving less than this is not news


class NoteKind(StrEnum):
    """Event kinds a channel subscribes to (``procplan notify add --events``)."""

    BOOKING_STARTS = "booking.starts"  # your booking starts in N minutes
    BOOKING_ENDS = "booking.ends"  # your booking ends in N minutes
    BOOKING_IDLE = "booking.idle"  # your booked GPUs are idle (and will be released)
    BOOKING_RELEASED = "booking.released"  # ... and were released
    FOREIGN_PROCESS = "booking.foreign"  # someone else's process runs on your booked GPUs
    NODE_DRAINING = "booking.draining"  # the node of your booking is being drained (ADR 0020)
    JOB_STARTED = "job.started"
    JOB_FINISHED = "job.finished"
    JOB_FAILED = "job.failed"
    JOB_PREEMPTED = "job.preempted"
    JOB_REQUEUED = "job.requeued"
    PREEMPT_WARNING = "job.warning"  # a foreign booking will preempt your open-ended job
    ESTIMATE_MOVED = "job.estimate"  # your queued job's estimated start moved
    NODE_OFFLINE = "node.offline"  # (admins)
    NODE_ONLINE = "node.online"  # (admins)
    TEST = "test"  # ``procplan notify test``


# Kinds addressed to the admins (and cluster channels), not to one user.
ADMIN_KINDS = frozenset({NoteKind.NODE_OFFLINE, NoteKind.NODE_ONLINE})


def parse_kinds(text: str) -> frozenset[NoteKind] | None:
    """``--events`` as given ("*" or "job.failed,booking.starts" or families such as "job"):
    the kinds, ``None`` for all; ``ValueError`` naming an unknown one."""
    text = text.strip()
    if text in ("", "*", "all"):
        return None
    kinds: set[NoteKind] = set()
    for part in (p.strip() for p in text.split(",")):
        family = [k for k in NoteKind if k.value.split(".")[0] == part]
        if family:
            kinds.update(family)
            continue
        try:
            kinds.add(NoteKind(part))
        except ValueError:
            known = ", ".join(k.value for k in NoteKind)
            raise ValueError(f"unknown event {part!r} (known: {known})") from None
    return frozenset(kinds)


@dataclass(frozen=True, slots=True)
class Note:
    """One event for one recipient (``user``; ``None``: the admins)."""

    key: str
    kind: NoteKind
    user: str | None
    subject: str
    body: str


def job_started(job: Job, at: Instant) -> Note:
    where = ", ".join(job.node_ids) or "no node"
    gpus = ", ".join(job.gpu_ids) or "no GPU"
    again = f" (run {job.requeues + 1})" if job.requeues else ""
    return Note(
        f"job:{job.id}:{job.requeues}:started", NoteKind.JOB_STARTED, job.user,
        f"Job {job.id} {_name(job)}started{again}",
        f"Job {job.id} started at {when_text(at)} on {where} ({gpus}).",
    )  # fmt: skip


def job_ended(job: Job, log_tail: Sequence[str] = (), efficiency: str = "") -> Note:
    """A job's end: finished, failed (exit code and its last log lines), cancelled or lost."""
    failed = job.state is not JobState.COMPLETED
    kind = NoteKind.JOB_FAILED if failed else NoteKind.JOB_FINISHED
    code = "" if job.exit_code is None else f" (exit code {job.exit_code})"
    lines = [f"Job {job.id} {_name(job)}{job.state.value}{code}."]
    if job.message:
        lines.append(job.message)
    if efficiency:
        lines.append(efficiency)
    if failed and log_tail:
        lines += ["", "Last lines of its log:", *log_tail[-LOG_TAIL_LINES:]]
    return Note(
        f"job:{job.id}:{job.requeues}:ended", kind, job.user,
        f"Job {job.id} {_name(job)}{job.state.value}{code}", "\n".join(lines),
    )  # fmt: skip


def job_preempted(job: Job, reason: str, requeued: bool) -> Note:
    """Preempted (stopped for another job or a booking); requeued when it goes back."""
    kind = NoteKind.JOB_REQUEUED if requeued else NoteKind.JOB_PREEMPTED
    what = "was requeued" if requeued else "is being preempted"
    return Note(
        f"job:{job.id}:{job.requeues}:{kind.value}", kind, job.user,
        f"Job {job.id} {_name(job)}{what}", f"Job {job.id} {what}: {reason}.",
    )  # fmt: skip


def estimate_moved(job: Job, before: Instant, after: Instant) -> Note:
    """A queued job's estimated start moved (by ``ESTIMATE_MOVED_S`` or more): once per
    half-hour slot it moves into."""
    way = "later" if after > before else "earlier"
    return Note(
        f"job:{job.id}:{job.requeues}:estimate:{after // ESTIMATE_MOVED_S}",
        NoteKind.ESTIMATE_MOVED, job.user,
        f"Job {job.id} {_name(job)}now expected to start at {when_text(after)}",
        f"The estimated start of job {job.id} moved {way}: from {when_text(before)} to "
        f"{when_text(after)}.",
    )  # fmt: skip


def job_preempt_warning(job: Job, booking_id: int, at: Instant) -> Note:
    """Ledger rule 3 ahead of time: a foreign booking begins on the job's GPUs."""
    return Note(
        f"job:{job.id}:{job.requeues}:warning:{booking_id}", NoteKind.PREEMPT_WARNING, job.user,
        f"Job {job.id} {_name(job)}will be preempted at {when_text(at)}",
        f"Job {job.id} runs without a time limit on GPUs that booking {booking_id} claims "
        f"from {when_text(at)}: it will be stopped then. Save your work before that.",
    )  # fmt: skip


def booking_soon(booking: Booking, starts: bool, minutes: int) -> Note:
    """Your booking starts (or ends) in ``minutes``."""
    kind = NoteKind.BOOKING_STARTS if starts else NoteKind.BOOKING_ENDS
    verb, at = ("starts", booking.start) if starts else ("ends", booking.end)
    gpus = ", ".join(booking.gpu_ids)
    return Note(
        f"booking:{booking.id}:{verb}:{at}", kind, booking.user,
        f"Booking {booking.id} {verb} in {minutes} min",
        f"Booking {booking.id} ({booking.label or 'no label'}) on {booking.node_id} ({gpus}) "
        f"{verb} at {when_text(at)}.",
    )  # fmt: skip


def foreign_process(booking: Booking, user: str | None, pid: int, gpu_id: str) -> Note:
    """Someone else's process runs on a GPU of your booking (once per process)."""
    return Note(
        f"booking:{booking.id}:foreign:{gpu_id}:{pid}", NoteKind.FOREIGN_PROCESS, booking.user,
        f"{user or 'Someone'} runs a process on your booked GPU {gpu_id}",
        f"Process {pid} of {user or 'an unknown user'} runs on {gpu_id} of {booking.node_id}, "
        f"which booking {booking.id} ({booking.label or 'no label'}) holds for you until "
        f"{when_text(booking.end)}.",
    )  # fmt: skip


def booking_node_draining(
    booking: Booking, reason: str | None, by: str | None, at: Instant
) -> Note:
    """An admin drained the node of your (current or future) booking: the booking stays, but
    the node is going into maintenance, so its owner may want to book elsewhere. Keyed by the
    drain's instant: a node drained again after a resume tells the owner again."""
    why = f": {reason}" if reason else ""
    who = f" by {by}" if by else ""
    return Note(
        f"booking:{booking.id}:draining:{at}", NoteKind.NODE_DRAINING, booking.user,
        f"Node {booking.node_id} of booking {booking.id} is being drained",
        f"Node {booking.node_id} was drained{who} at {when_text(at)}{why}. Your booking "
        f"{booking.id} ({booking.label or 'no label'}, {when_text(booking.start)} to "
        f"{when_text(booking.end)}) stays, but no new job or booking starts there until an "
        "admin resumes the node: you may want to book elsewhere.",
    )  # fmt: skip


def node_changed(node_id: str, online: bool, at: Instant) -> Note:
    kind = NoteKind.NODE_ONLINE if online else NoteKind.NODE_OFFLINE
    state = "back online" if online else "offline"
    return Note(
        f"node:{node_id}:{kind.value}:{at}", kind, None, f"Node {node_id} is {state}",
        f"Node {node_id} is {state} since {when_text(at)}.",
    )  # fmt: skip


def _name(job: Job) -> str:
    return f"({job.name}) " if job.name else ""


def when_text(at: Instant) -> str:
    """An instant as notes write it: to the minute, in UTC."""
    return to_datetime(at).strftime("%Y-%m-%d %H:%M UTC")
