"""The ledger rules, written once (DESIGN.md, "One ledger", rules 1–4).

``judge(ask, holds)`` answers the one question every writer and reader of the ledger asks:
may this claim go on this GPU, and if not, why and who is in the way? The booking write path
and its extension, the job-start re-check in the write transaction, the booking report of
jobs to preempt, and the differential tests all call it. The planner's per-cycle view
(``core.availability.Cluster``) answers the same question for thousands of candidate starts,
so it keeps its own indexes, but it asks ``Want`` — defined here — which bookings are the
job's own and which window a job's claim checks. ``tests/store/test_ledger_differential.py``
holds the two, the placement search and the store to the same answers on random ledgers.

The rules, for a claim on one GPU:

1. A **booking** never overlaps another booking's claim.
2. During a booking, the GPU goes only to jobs of the booking's owner or jobs naming it.
3. A **job** with a time limit claims ``[start, start + limit)`` and needs no foreign booking
   there; an open-ended job claims ``[start, ∞)`` and needs no foreign booking active at its
   start (it is preempted when one begins). Two jobs never share a GPU.
4. A **booking** may cover a job's claim only when the job is open-ended (it will be
   preempted: the verdict lists it) or the job is the booking owner's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import NamedTuple

from procplan.core.jobs import OPEN_END
from procplan.core.timeutil import Instant

__all__ = [
    "Ask",
    "Hold",
    "Holder",
    "Preempted",
    "Preview",
    "Refusal",
    "Verdict",
    "Want",
    "judge",
    "preempted_jobs",
]


class Holder(StrEnum):
    """What holds a claim."""

    BOOKING = "booking"
    JOB = "job"


class Refusal(Enum):
    """Why a claim may not go on a GPU; the value is the error code clients see."""

    BOOKED = "gpu_conflict"  # rule 1: another booking's claim overlaps
    JOB_HOLDS = "job_conflict"  # rule 4: another user's time-limited job holds the GPU
    FOREIGN_BOOKING = "foreign_booking"  # rules 2 and 3: someone else's booking is in the way
    JOB_RUNNING = "gpu_busy"  # another job holds the GPU


@dataclass(frozen=True, slots=True)
class Hold:
    """One active claim as the rules see it: ``holder`` ``holder_id`` of ``user`` holds
    ``gpu_id`` over ``[start, end)`` (``end == OPEN_END``: an open-ended job). ``label`` and
    ``job_kind`` only travel to reports (a job's name and kind, a booking's label)."""

    holder: Holder
    holder_id: int
    user: str
    gpu_id: str
    start: Instant
    end: Instant
    label: str = ""
    job_kind: str = ""

    @property
    def open_ended(self) -> bool:
        return self.end >= OPEN_END


class Want(NamedTuple):
    """What a job asks of each GPU it would take: whose bookings are its own (``user``, or
    the booking it names) and how long it claims (``None``: open-ended)."""

    user: str
    booking_id: int | None
    length: int | None

    def ends(self, start: Instant) -> tuple[Instant, Instant]:
        """(end of the window bookings are checked over, end of the claim) for a start at
        ``start``. An open-ended job only needs no foreign booking active at its start
        (rule 3: it is preempted when one begins), but its claim never ends."""
        if self.length is None:
            return start + 1, OPEN_END
        end = start + self.length
        return end, end

    def foreign(self, booking_user: str, booking_id: int) -> bool:
        """Is this booking someone else's, as far as this job is concerned (rule 2)?"""
        return booking_user != self.user and booking_id != self.booking_id


@dataclass(frozen=True, slots=True)
class Ask:
    """A claim someone wants to place on one GPU from ``start``.

    A booking asks for ``[start, end)``; ``own_id`` is its id when an existing booking is
    extended (its own claims are not in its way). A job asks through ``want`` (the end
    follows from its length)."""

    holder: Holder
    user: str
    start: Instant
    end: Instant
    own_id: int | None = None
    want: Want | None = None

    @classmethod
    def booking(cls, user: str, start: Instant, end: Instant, own_id: int | None = None) -> Ask:
        return cls(Holder.BOOKING, user, start, end, own_id)

    @classmethod
    def job(
        cls, user: str, start: Instant, length: int | None, booking_id: int | None = None
    ) -> Ask:
        want = Want(user, booking_id, length)
        return cls(Holder.JOB, user, start, want.ends(start)[1], want=want)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer: ``refusal`` is ``None`` when the claim may go on; ``blocking`` lists the
    holds in the way (by start), ``preempts`` the open-ended jobs a booking will preempt
    (rule 4, then rule 3)."""

    refusal: Refusal | None = None
    blocking: tuple[Hold, ...] = ()
    preempts: tuple[Hold, ...] = ()

    @property
    def ok(self) -> bool:
        return self.refusal is None


_FREE = Verdict()


def judge(ask: Ask, holds: Iterable[Hold]) -> Verdict:
    """May ``ask`` go on the GPU whose active claims are ``holds``? Holds of other GPUs or
    that do not overlap the ask are ignored, so a caller may pass a superset."""
    if ask.want is not None:
        return _judge_job(ask, ask.want, holds)
    return _judge_booking(ask, holds)


def _overlaps(hold: Hold, start: Instant, end: Instant) -> bool:
    return hold.start < end and hold.end > start


def _judge_booking(ask: Ask, holds: Iterable[Hold]) -> Verdict:
    booked: list[Hold] = []
    jobs: list[Hold] = []
    preempts: list[Hold] = []
    for hold in holds:
        if not _overlaps(hold, ask.start, ask.end):
            continue
        if hold.holder is Holder.BOOKING:
            if hold.holder_id != ask.own_id:
                booked.append(hold)
        elif hold.user == ask.user:
            continue  # the owner's own job: their booking does not stop it
        elif hold.open_ended:
            preempts.append(hold)
        else:
            jobs.append(hold)
    if booked:
        return Verdict(Refusal.BOOKED, _by_start(booked))
    if jobs:
        return Verdict(Refusal.JOB_HOLDS, _by_start(jobs))
    return Verdict(preempts=_by_start(preempts)) if preempts else _FREE


def _judge_job(ask: Ask, want: Want, holds: Iterable[Hold]) -> Verdict:
    booking_end, claim_end = want.ends(ask.start)
    running: list[Hold] = []
    foreign: list[Hold] = []
    for hold in holds:
        if hold.holder is Holder.JOB:
            if _overlaps(hold, ask.start, claim_end):
                running.append(hold)
        elif _overlaps(hold, ask.start, booking_end) and want.foreign(hold.user, hold.holder_id):
            foreign.append(hold)
    if running:
        return Verdict(Refusal.JOB_RUNNING, _by_start(running))
    if foreign:
        return Verdict(Refusal.FOREIGN_BOOKING, _by_start(foreign))
    return _FREE


def _by_start(holds: list[Hold]) -> tuple[Hold, ...]:
    return tuple(sorted(holds, key=lambda h: (h.start, h.holder_id)))


class Preempted(NamedTuple):
    """An open-ended job of another user on a booking's GPUs: rule 4 lets the booking in,
    and rule 3 preempts the job when the booking begins."""

    job_id: int
    user: str
    kind: str
    name: str
    gpu_ids: tuple[str, ...]


def preempted_jobs(verdicts: Iterable[Verdict]) -> list[Preempted]:
    """The jobs the verdicts of one booking (one per GPU) will preempt, one entry per job
    with its GPUs sorted, by job id."""
    found: dict[int, tuple[Hold, list[str]]] = {}
    for verdict in verdicts:
        for hold in verdict.preempts:
            found.setdefault(hold.holder_id, (hold, []))[1].append(hold.gpu_id)
    return [
        Preempted(job_id, hold.user, hold.job_kind, hold.label, tuple(sorted(gpus)))
        for job_id, (hold, gpus) in sorted(found.items())
    ]


class Preview(NamedTuple):
    """What a booking request would do if made now: the GPUs it would take and the jobs it
    would preempt (``POST /api/v1/bookings/check``; a refusal is raised instead)."""

    node_id: str
    gpu_ids: tuple[str, ...]
    start: Instant
    end: Instant
    user: str
    preempted: tuple[Preempted, ...]
