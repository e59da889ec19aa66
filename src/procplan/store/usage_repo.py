"""The reads usage accounting needs (issue #14): claims, job starts, busy history buckets.

The arithmetic is ``core.usage``'s; this module only selects rows, so that a 30-day report of a
300-node cluster stays a handful of indexed range scans:

- history: hourly rows (step 3600) up to the **roll-up frontier** (the end of the newest hourly
  row: the leader rolls closed hours up, ``HistoryKeeper.maintain``) and minute rows only after
  it. Minute rows of rolled hours are never read for reports: their hour already sums them.
  Only *busy* buckets come back (mean utilization ≥ the threshold, compared in SQL as
  ``util_sum >= t * util_n``, as ``core.usage.busy_bucket`` does). An hour a leader never
  rolled up (a leader outage longer than the roll-up's two-hour look-back) is missed.
- claims never deleted (ADR 0010) are the record of who held which GPU when: finished claims
  are inactive and truncated, so inactive claims are read too. A cancelled booking counts up to
  its cancellation (``updated_at``): a cancel before its start leaves nothing booked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
)

from procplan.core.usage import NO_TENANT, FinishedJob, Hold, JobStart, Sample
from procplan.store.engine import Store
from procplan.store.tables import (
    GPU_ID_SEPARATOR,
    bookings,
    claims,
    gpu_history,
    gpus,
    jobs,
    memberships,
    nodes,
    tenants,
    users,
)

__all__ = ["FINISHED", "UsageStore"]

MINUTE, HOUR = 60, 3600
FINISHED = ("completed", "failed", "cancelled", "preempted", "lost")

_booking_user = users.alias("booking_user")
_job_user = users.alias("job_user")
_job_tenant = tenants.alias("job_tenant")


class UsageStore:
    """Read-only queries behind ``service.usage``; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def holds(self, start: int, end: int, gpu_pks: Sequence[int] | None = None) -> list[Hold]:
        """Every booking and job claim overlapping ``[start, end)`` (active or not).

        Names come from small lookup tables rather than joins: a month of a large cluster is
        a few hundred thousand claims, and one shared string per name is cheaper than one
        fresh string per row."""
        query = (
            select(
                claims.c.start_s,
                claims.c.end_s,
                claims.c.booking_id,
                claims.c.job_id,
                claims.c.gpu_pk,
                bookings.c.status,
                bookings.c.updated_at,
                func.coalesce(bookings.c.user_pk, jobs.c.user_pk),
                jobs.c.tenant_pk,
            )
            .select_from(claims)
            .outerjoin(bookings, bookings.c.id == claims.c.booking_id)
            .outerjoin(jobs, jobs.c.id == claims.c.job_id)
            .where(claims.c.start_s < end, claims.c.end_s > start)
        )
        if gpu_pks is not None:
            query = query.where(claims.c.gpu_pk.in_(list(gpu_pks)))
        with self.store.read() as conn:
            rows = conn.execute(query).all()
            home = _home_tenants(conn)
            user_names = dict(conn.execute(select(users.c.pk, users.c.name)).all())
            tenant_ids = dict(conn.execute(select(tenants.c.pk, tenants.c.id)).all())
            gpu_of = {
                pk: (gpu, node)
                for pk, gpu, node in conn.execute(
                    select(gpus.c.pk, gpus.c.id, nodes.c.id).join(
                        nodes, nodes.c.pk == gpus.c.node_pk
                    )
                )
            }
        booking_tenant = {pk: home.get(name, NO_TENANT) for pk, name in user_names.items()}
        out: list[Hold] = []
        add = out.append
        for start_s, end_s, b_id, j_id, gpu_pk, status, updated, user_pk, tenant_pk in rows:
            gpu, node = gpu_of[gpu_pk]
            user = user_names[user_pk]
            if b_id is None:
                add(Hold(gpu, node, start_s, end_s, user, tenant_ids[tenant_pk], None, j_id))
                continue
            if status == "cancelled" and updated is not None:
                end_s = max(min(end_s, updated), start_s)  # counted until it was cancelled
            add(Hold(gpu, node, start_s, end_s, user, booking_tenant[user_pk], b_id))
        return out

    def gpu_nodes(self) -> dict[str, str]:
        """Every GPU id (retired ones too: history outlives them) → its node id."""
        query = select(gpus.c.id, nodes.c.id).join(nodes, nodes.c.pk == gpus.c.node_pk)
        with self.store.read() as conn:
            return {gpu: node for gpu, node in conn.execute(query)}

    def frontier(self) -> int | None:
        """The end of the newest hourly row (hours before it are rolled up), or ``None``."""
        query = select(func.max(gpu_history.c.bucket)).where(gpu_history.c.step_s == HOUR)
        with self.store.read() as conn:
            newest = conn.execute(query).scalar()
        return None if newest is None else int(newest) + HOUR

    def busy(
        self, start: int, end: int, threshold_pct: float, gpu_pks: Sequence[int] | None = None
    ) -> dict[str, list[tuple[int, int]]]:
        """Per GPU id, the spans of busy buckets overlapping ``[start, end)``: hourly rows
        before the roll-up frontier, minute rows after it.

        The database packs the busy buckets of each GPU-day (hours) or GPU-hour (minutes)
        into one bit mask (``SUM(1 << slot)``: a GPU has at most one row per bucket, so the
        sum is an OR), which sends 24 or 60 times fewer rows to Python than one per bucket;
        ``_mask_spans`` unpacks them into runs."""
        split = self.frontier()
        split = start if split is None else min(max(split, start), end)
        ids = self._gpu_ids()
        out: dict[str, list[tuple[int, int]]] = {}
        with self.store.read() as conn:
            for step, slots, lo, hi in ((HOUR, 24, start, split), (MINUTE, 60, split, end)):
                if hi <= lo:
                    continue
                period = step * slots
                h = gpu_history.c
                # Numbers rendered into the SQL: PostgreSQL matches GROUP BY expressions by
                # text (as in ``history_repo``).
                p_sql, s_sql = (literal_column(str(int(v)), Integer) for v in (period, step))
                slot = cast((h.bucket % p_sql) // s_sql, Integer)
                group = (h.bucket // p_sql).label("period")
                query = (
                    select(h.gpu_pk, group, func.sum(cast(literal(1), BigInteger).op("<<")(slot)))
                    .where(h.step_s == step, h.bucket >= lo - lo % step, h.bucket < hi)
                    .where(_is_busy(threshold_pct))
                    .where(true() if gpu_pks is None else h.gpu_pk.in_(list(gpu_pks)))
                    .group_by(h.gpu_pk, group)
                    .order_by(h.gpu_pk, group)  # spans come out sorted, runs joined
                )
                for gpu_pk, number, mask in conn.execute(query):
                    spans = out.get(ids[gpu_pk])
                    if spans is None:
                        spans = out[ids[gpu_pk]] = []
                    _mask_spans(spans, int(mask), int(number) * period, step)
        return out

    def booking_claims(self, booking_id: int) -> tuple[int, int, list[int]] | None:
        """The booking's span as accounting counts it (a cancelled one until its
        cancellation) and its GPUs' keys, or ``None`` when no such booking exists."""
        query = select(
            bookings.c.start_s, bookings.c.end_s, bookings.c.status, bookings.c.updated_at
        ).where(bookings.c.id == booking_id)
        gpus_of = select(claims.c.gpu_pk).where(claims.c.booking_id == booking_id)
        with self.store.read() as conn:
            found = conn.execute(query).first()
            gpu_pks = [pk for (pk,) in conn.execute(gpus_of)]
        if found is None:
            return None
        start, end, status, updated = found
        if status == "cancelled" and updated is not None:
            end = max(min(end, updated), start)
        return int(start), int(end), gpu_pks

    def starts(self, start: int, end: int) -> list[JobStart]:
        """Jobs whose (latest) run started in ``[start, end)``."""
        query = (
            select(
                jobs.c.id,
                users.c.name,
                tenants.c.id,
                jobs.c.alloc_nodes,
                jobs.c.submitted_at,
                jobs.c.started_at,
            )
            .join(users, users.c.pk == jobs.c.user_pk)
            .join(tenants, tenants.c.pk == jobs.c.tenant_pk)
            .where(jobs.c.started_at >= start, jobs.c.started_at < end)
        )
        with self.store.read() as conn:
            return [
                JobStart(job, user, tenant, _nodes(alloc), int(submitted), int(started))
                for job, user, tenant, alloc, submitted, started in conn.execute(query)
            ]

    def job_claims(self, job_id: int) -> list[Hold]:
        """Every claim of every run of the job."""
        return self._job_holds(job_id)

    def samples(self, gpu_ids: Sequence[str], start: int, end: int) -> list[Sample]:
        """The history of ``gpu_ids`` over ``[start, end)``: minute rows where they are kept,
        and hourly rows for the hours that have none (minute rows are pruned first)."""
        if not gpu_ids or end <= start:
            return []
        with self.store.read() as conn:
            minutes = _samples(conn, gpu_ids, MINUTE, start, end)
            hours = _samples(conn, gpu_ids, HOUR, start, end)
        covered = {(s.gpu, s.start - s.start % HOUR) for s in minutes}
        return minutes + [s for s in hours if (s.gpu, s.start) not in covered]

    def finished(
        self,
        start: int,
        end: int,
        *,
        user: str | None = None,
        states: Iterable[str] = FINISHED,
        limit: int = 100,
    ) -> list[FinishedJob]:
        """Jobs that ended in ``[start, end)`` in ``states``, newest first, with the GPU time
        of their claims (all runs)."""
        gpu_s = (
            select(func.coalesce(func.sum(claims.c.end_s - claims.c.start_s), 0))
            .where(claims.c.job_id == jobs.c.id, claims.c.end_s > claims.c.start_s)
            .scalar_subquery()
        )
        query = (
            select(
                jobs.c.id,
                jobs.c.name,
                users.c.name,
                tenants.c.id,
                jobs.c.kind,
                jobs.c.state,
                jobs.c.gpu_count,
                jobs.c.alloc_nodes,
                jobs.c.submitted_at,
                jobs.c.started_at,
                jobs.c.ended_at,
                jobs.c.exit_code,
                gpu_s,
            )
            .join(users, users.c.pk == jobs.c.user_pk)
            .join(tenants, tenants.c.pk == jobs.c.tenant_pk)
            .where(jobs.c.ended_at >= start, jobs.c.ended_at < end)
            .where(jobs.c.state.in_(list(states)))
            .order_by(jobs.c.ended_at.desc(), jobs.c.id.desc())
            .limit(limit)
        )
        if user is not None:
            query = query.where(users.c.name == user)
        with self.store.read() as conn:
            return [_finished(row) for row in conn.execute(query)]

    def gpu_seconds_so_far(self, now: int) -> list[tuple[str, str, str, float]]:
        """``(kind, user, tenant, GPU-seconds)`` of every claim up to ``now``: ``kind`` is
        ``job`` or ``booking``. Claims are never deleted and only ever cut at the moment they
        end, so each sum only grows: Prometheus counters (``service.usage_metrics``)."""
        now_v = literal(int(now))
        booking_end = case(
            (
                and_(bookings.c.status == "cancelled", bookings.c.updated_at < claims.c.end_s),
                bookings.c.updated_at,
            ),
            else_=claims.c.end_s,
        )
        seconds = func.sum(_positive(_least(booking_end, now_v) - claims.c.start_s))
        booked = (
            select(_booking_user.c.name, seconds)
            .select_from(claims)
            .join(bookings, bookings.c.id == claims.c.booking_id)
            .join(_booking_user, _booking_user.c.pk == bookings.c.user_pk)
            .where(claims.c.start_s < now_v)
            .group_by(_booking_user.c.name)
        )
        job_seconds = func.sum(_positive(_least(claims.c.end_s, now_v) - claims.c.start_s))
        ran = (
            select(_job_user.c.name, _job_tenant.c.id, job_seconds)
            .select_from(claims)
            .join(jobs, jobs.c.id == claims.c.job_id)
            .join(_job_user, _job_user.c.pk == jobs.c.user_pk)
            .join(_job_tenant, _job_tenant.c.pk == jobs.c.tenant_pk)
            .where(claims.c.start_s < now_v)
            .group_by(_job_user.c.name, _job_tenant.c.id)
        )
        with self.store.read() as conn:
            tenant_of = _home_tenants(conn)
            out = [
                ("booking", user, tenant_of.get(user, NO_TENANT), float(total or 0))
                for user, total in conn.execute(booked)
            ]
            out += [("job", u, t, float(total or 0)) for u, t, total in conn.execute(ran)]
        return out

    def _job_holds(self, job_id: int) -> list[Hold]:
        query = (
            select(claims.c.start_s, claims.c.end_s, gpus.c.id, nodes.c.id, users.c.name)
            .join(gpus, gpus.c.pk == claims.c.gpu_pk)
            .join(nodes, nodes.c.pk == gpus.c.node_pk)
            .join(jobs, jobs.c.id == claims.c.job_id)
            .join(users, users.c.pk == jobs.c.user_pk)
            .where(claims.c.job_id == job_id)
            .order_by(claims.c.start_s, claims.c.position)
        )
        with self.store.read() as conn:
            return [
                Hold(gpu, node, int(s), int(e), user, "", job=job_id)
                for s, e, gpu, node, user in conn.execute(query)
            ]

    def _gpu_ids(self) -> dict[int, str]:
        with self.store.read() as conn:
            return {pk: gpu for pk, gpu in conn.execute(select(gpus.c.pk, gpus.c.id))}


def _mask_spans(out: list[tuple[int, int]], mask: int, base: int, step: int) -> None:
    """Append the runs of set bits of ``mask`` (bit ``i``: ``[base + i*step, +step)``) to
    ``out``, joining a run that continues the last one."""
    while mask:
        first = (mask & -mask).bit_length() - 1
        shifted = mask >> first
        length = (~shifted & (shifted + 1)).bit_length() - 1  # trailing ones
        start, end = base + first * step, base + (first + length) * step
        if out and out[-1][1] == start:  # continues the run of the previous period
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
        mask &= ~(((1 << length) - 1) << first)


def _is_busy(threshold_pct: float) -> Any:
    return and_(
        gpu_history.c.util_n > 0,
        gpu_history.c.util_sum >= literal(float(threshold_pct)) * gpu_history.c.util_n,
    )


def _least(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    """The smaller of two instants, in SQL both SQLite and PostgreSQL read."""
    return case((a < b, a), else_=b)


def _positive(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((value > 0, value), else_=literal(0))


def _home_tenants(conn: Any) -> dict[str, str]:
    """Each user's first tenant (oldest membership, as ``TenantStore.tenant_of`` picks for
    their jobs): a booking names no tenant, so it is charged to its owner's first one, or to
    the default tenant."""
    query = (
        select(users.c.name, tenants.c.id)
        .join(memberships, memberships.c.user_pk == users.c.pk)
        .join(tenants, tenants.c.pk == memberships.c.tenant_pk)
        .order_by(memberships.c.created_at.desc(), memberships.c.pk.desc())
    )
    return {user: tenant for user, tenant in conn.execute(query)}  # the oldest wins: last


def _nodes(alloc: str | None) -> tuple[str, ...]:
    return tuple(n for n in (alloc or "").split(GPU_ID_SEPARATOR) if n)


def _samples(conn: Any, gpu_ids: Sequence[str], step: int, start: int, end: int) -> list[Sample]:
    h = gpu_history.c
    query = (
        select(
            gpus.c.id,
            h.bucket,
            h.util_sum,
            h.util_n,
            h.util_max,
            h.mem_used_sum,
            h.mem_used_n,
            h.mem_used_max,
        )
        .join(gpus, gpus.c.pk == h.gpu_pk)
        .where(gpus.c.id.in_(list(gpu_ids)), h.step_s == step)
        .where(h.bucket >= start - start % step, h.bucket < end)
    )
    return [
        Sample(gpu, int(b), step, float(us), int(un), _opt(um), float(ms), int(mn), _opt(mm))
        for gpu, b, us, un, um, ms, mn, mm in conn.execute(query)
    ]


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _finished(row: Any) -> FinishedJob:
    (jid, name, user, tenant, kind, state, count, alloc, sub, started, ended, code, gpu_s) = row
    return FinishedJob(
        id=int(jid),
        name=str(name),
        user=str(user),
        tenant=str(tenant),
        kind=str(kind),
        state=str(state),
        gpu_count=int(count),
        nodes=_nodes(alloc),
        submitted=int(sub),
        started=None if started is None else int(started),
        ended=None if ended is None else int(ended),
        exit_code=None if code is None else int(code),
        gpu_s=int(gpu_s or 0),
    )
