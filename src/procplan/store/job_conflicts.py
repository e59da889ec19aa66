"""Ledger rule 4 on the booking side: a booking may not take GPUs a job holds.

A new or extended booking over an active job claim is refused unless the job is open-ended
(it will be preempted when the booking begins: rule 3) or belongs to the booking's own user.
Read in the booking's write transaction, under the same per-node lock that job starts take
(``job_apply``), so a job cannot start on those GPUs between this check and the insert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from procplan.core.errors import Conflict
from procplan.core.jobs import OPEN_END
from procplan.core.model import Claim
from procplan.core.timeutil import Instant, to_iso
from procplan.store.tables import claims, jobs, users

_BLOCKING_JOB_CLAIMS = (
    select(claims.c.gpu_pk, claims.c.start_s, claims.c.end_s, claims.c.job_id)
    .join_from(claims, jobs, claims.c.job_id == jobs.c.id)
    .join(users, users.c.pk == jobs.c.user_pk)
    .where(claims.c.gpu_pk.in_(bindparam("gpu_pks", expanding=True)))
    .where(claims.c.job_id.is_not(None))
    .where(claims.c.active.is_(True))
    .where(claims.c.start_s < bindparam("end"))
    .where(claims.c.end_s > bindparam("start"))
    .where(claims.c.end_s < OPEN_END)
    .where(users.c.name != bindparam("user"))
)


# Open-ended claims of other users' jobs: allowed under a booking, which preempts them (rule 3).
_OPEN_ENDED_JOB_CLAIMS = (
    select(claims.c.gpu_pk, claims.c.job_id, users.c.name, jobs.c.kind, jobs.c.name)
    .join_from(claims, jobs, claims.c.job_id == jobs.c.id)
    .join(users, users.c.pk == jobs.c.user_pk)
    .where(claims.c.gpu_pk.in_(bindparam("gpu_pks", expanding=True)))
    .where(claims.c.active.is_(True))
    .where(claims.c.start_s < bindparam("end"))
    .where(claims.c.end_s >= OPEN_END)
    .where(users.c.name != bindparam("user"))
)


class Preempted(NamedTuple):
    """An open-ended job of another user on a new booking's GPUs: rule 4 lets the booking in,
    and rule 3 preempts the job when the booking begins."""

    job_id: int
    user: str
    kind: str
    name: str
    gpu_ids: tuple[str, ...]


def preempted_jobs(
    conn: Connection, gpu_pks: Mapping[str, int], start: Instant, end: Instant, user: str
) -> list[Preempted]:
    """The open-ended jobs of other users holding (or about to hold) these GPUs in the
    window, one entry per job, by job id."""
    if not gpu_pks:
        return []
    by_pk = {pk: gpu_id for gpu_id, pk in gpu_pks.items()}
    params = {"gpu_pks": list(by_pk), "end": end, "user": user}
    found: dict[int, tuple[str, str, str, list[str]]] = {}
    for pk, job_id, owner, kind, name in conn.execute(_OPEN_ENDED_JOB_CLAIMS, params):
        found.setdefault(job_id, (owner, kind, name, []))[3].append(by_pk[pk])
    return [
        Preempted(job_id, owner, kind, name, tuple(sorted(gpus)))
        for job_id, (owner, kind, name, gpus) in sorted(found.items())
    ]


class JobHold(NamedTuple):
    """A job claim in the way of a booking."""

    gpu_id: str
    start: Instant
    end: Instant
    job_id: int


def blocking_jobs(
    conn: Connection, gpu_pks: Mapping[str, int], start: Instant, end: Instant, user: str
) -> list[JobHold]:
    """Active, time-limited claims of other users' jobs on these GPUs overlapping the window."""
    if not gpu_pks:
        return []
    by_pk = {pk: gpu_id for gpu_id, pk in gpu_pks.items()}
    params = {"gpu_pks": list(by_pk), "start": start, "end": end, "user": user}
    return [
        JobHold(by_pk[pk], s, e, j) for pk, s, e, j in conn.execute(_BLOCKING_JOB_CLAIMS, params)
    ]


def as_claims(holds: list[JobHold]) -> list[Claim]:
    """Job holds as ledger claims (negative ids: they never collide with booking ids), so that
    GPU selection by count steps around them."""
    return [Claim(h.gpu_id, h.start, h.end, -h.job_id) for h in holds]


def check_no_jobs(
    conn: Connection, gpu_pks: Mapping[str, int], start: Instant, end: Instant, user: str
) -> None:
    """Raise ``Conflict`` (``job_conflict``) naming the first job in the way, if any."""
    holds = blocking_jobs(conn, gpu_pks, start, end, user)
    if holds:
        first = min(holds, key=lambda h: (h.gpu_id, h.job_id))
        raise Conflict(
            f"GPU '{first.gpu_id}' is in use by job {first.job_id} until {to_iso(first.end)}",
            code="job_conflict",
        )
