"""The ledger as the rules see it: active claims of bookings and jobs, read as ``Hold``s.

One query reads every active claim on some GPUs overlapping a window, whoever holds it; the
decision is the pure core's (``core.ledger.judge``). The SQL filters by GPU, ``active`` and
time overlap only — it encodes no rule — so there is nothing here that could disagree with
the rules. Writers call it inside their write transaction, after taking the per-node lock
(PostgreSQL) or under SQLite's write lock, so the answer still holds when they write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from procplan.core.ledger import (
    HORIZON_S,
    Ask,
    BookingConflict,
    Hold,
    Holder,
    Preempted,
    Refusal,
    Verdict,
    judge,
    next_free,
    preempted_jobs,
)
from procplan.core.ledger.refusals import booked_message
from procplan.core.timeutil import Instant, to_iso
from procplan.store import fast_sql
from procplan.store.tables import bookings, claims, jobs, users

__all__ = ["check_booking", "read_holds", "refusal", "settle"]

_booking_users = users.alias("booking_users")
_job_users = users.alias("job_users")
_HOLDS = (
    select(
        claims.c.gpu_pk,
        claims.c.start_s,
        claims.c.end_s,
        claims.c.booking_id,
        claims.c.job_id,
        _booking_users.c.name,
        _job_users.c.name,
        bookings.c.label,
        jobs.c.name,
        jobs.c.kind,
    )
    .select_from(claims)
    .outerjoin(bookings, claims.c.booking_id == bookings.c.id)
    .outerjoin(_booking_users, _booking_users.c.pk == bookings.c.user_pk)
    .outerjoin(jobs, claims.c.job_id == jobs.c.id)
    .outerjoin(_job_users, _job_users.c.pk == jobs.c.user_pk)
    .where(claims.c.gpu_pk.in_(bindparam("gpu_pks", expanding=True)))
    .where(claims.c.active.is_(True))
    .where(claims.c.start_s < bindparam("end"))
    .where(claims.c.end_s > bindparam("start"))
)


def read_holds(
    conn: Connection, gpu_pks: Mapping[str, int], start: Instant, end: Instant
) -> dict[str, list[Hold]]:
    """Active claims on these GPUs (id -> primary key) overlapping ``[start, end)``, per GPU
    id (every asked GPU has an entry)."""
    out: dict[str, list[Hold]] = {gpu_id: [] for gpu_id in gpu_pks}
    if not gpu_pks:
        return out
    by_pk = {pk: gpu_id for gpu_id, pk in gpu_pks.items()}
    params = {"gpu_pks": list(by_pk), "start": start, "end": end}
    for pk, s, e, b_id, j_id, b_user, j_user, label, j_name, j_kind in fast_sql.rows(
        conn, _HOLDS, params
    ):
        gpu_id = by_pk[pk]
        if b_id is not None:
            hold = Hold(Holder.BOOKING, b_id, b_user, gpu_id, s, e, label or "")
        else:
            hold = Hold(Holder.JOB, j_id, j_user, gpu_id, s, e, j_name or "", j_kind or "")
        out[gpu_id].append(hold)
    return out


def check_booking(
    conn: Connection, gpu_pks: Mapping[str, int], gpu_ids: Sequence[str], ask: Ask
) -> list[Preempted]:
    """Raise ``Conflict`` unless ``ask`` (a booking) may go on every GPU of ``gpu_ids``;
    else the jobs it will preempt (rule 4's report, from the same verdicts).

    A booking in the way is reported for the first such GPU in request order (rule 1) before
    any job (rule 4), whose report names the first GPU by id, then the lowest job id."""
    holds = read_holds(conn, {g: gpu_pks[g] for g in gpu_ids if g in gpu_pks}, ask.start, ask.end)
    verdicts = [judge(ask, holds.get(gpu_id, ())) for gpu_id in gpu_ids]
    return settle(conn, gpu_pks, gpu_ids, ask, list(zip(gpu_ids, verdicts, strict=True)))


def settle(
    conn: Connection,
    gpu_pks: Mapping[str, int],
    gpu_ids: Sequence[str],
    ask: Ask,
    verdicts: Sequence[tuple[str, Verdict]],
) -> list[Preempted]:
    """``check_booking``'s answer from verdicts already reached (per GPU, in request order;
    an edit judges only the claims it adds, ``booking_edit``): raise the refusal of ``ask``
    on ``gpu_ids``, else the jobs it will preempt."""
    for gpu_id, verdict in verdicts:
        if verdict.refusal is Refusal.BOOKED:
            raise refusal(
                conn,
                gpu_pks,
                gpu_ids,
                ask,
                booked_message(gpu_id),
                "gpu_conflict",
                [h for _, v in verdicts for h in v.blocking],
            )
    in_the_way = [h for _, v in verdicts if v.refusal is Refusal.JOB_HOLDS for h in v.blocking]
    if in_the_way:
        first = min(in_the_way, key=lambda h: (h.gpu_id, h.holder_id))
        raise refusal(
            conn,
            gpu_pks,
            gpu_ids,
            ask,
            f"GPU '{first.gpu_id}' is in use by job {first.holder_id} until {to_iso(first.end)}",
            "job_conflict",
            in_the_way,
        )
    return preempted_jobs(v for _, v in verdicts)


def refusal(
    conn: Connection,
    gpu_pks: Mapping[str, int],
    gpu_ids: Sequence[str],
    ask: Ask,
    message: str,
    code: str,
    blocking: Sequence[Hold],
    count: int | None = None,
) -> BookingConflict:
    """The refusal of ``ask`` with the holds in its way and where it would fit next: the
    asked GPUs' holds over the look-ahead, read in the same transaction, searched by the
    pure core (``next_free``). Only refusals pay for this read."""
    asked = {g: gpu_pks[g] for g in gpu_ids if g in gpu_pks}
    horizon = read_holds(conn, asked, ask.start, ask.start + HORIZON_S + (ask.end - ask.start))
    suggestion = next_free(ask, horizon, list(asked), count)
    holders = sorted(set(blocking), key=lambda h: (h.start, h.gpu_id, h.holder_id))
    return BookingConflict(message, code, holders, suggestion)
