"""GPU reading history: per-GPU minute aggregates merged by upsert, hourly roll-ups (ADR 0006 §5).

Every server process folds the readings it receives into minute aggregates and writes closed
minutes with ``add``, an upsert that adds counts and sums and keeps the max: several processes
may each hold part of the same minute. The leader rolls closed hours into hourly rows with
``rollup`` (a replace, so re-running it is harmless) and drops old rows with ``prune``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Integer, case, delete, exists, func, literal_column, select

from procplan.store.engine import Store
from procplan.store.tables import HISTORY_METRICS, gpu_history, gpus, nodes, upsert_insert

__all__ = ["METRICS", "HistoryRow", "HistoryStore"]

METRICS = HISTORY_METRICS  # utilization %, memory used MB, temperature °C, power W

T = TypeVar("T")
Quad = tuple[float, float, float, float]
CountQuad = tuple[int, int, int, int]
MaxQuad = tuple[float | None, float | None, float | None, float | None]


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One GPU's aggregate over ``[bucket, bucket + step_s)``; tuples in ``METRICS`` order.

    ``n`` counts readings; ``counts[i]`` the readings that had metric ``i`` (a mean is
    ``sums[i] / counts[i]``); ``maxes[i]`` is ``None`` when none had it.
    """

    gpu_id: str
    step_s: int
    bucket: int
    n: int
    sums: Quad
    counts: CountQuad
    maxes: MaxQuad

    def merged(self, other: HistoryRow) -> HistoryRow:
        """Both aggregates as one (same GPU, step and bucket)."""
        return HistoryRow(
            self.gpu_id,
            self.step_s,
            self.bucket,
            self.n + other.n,
            _quad(a + b for a, b in zip(self.sums, other.sums, strict=True)),
            _quad(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            _quad(_max(a, b) for a, b in zip(self.maxes, other.maxes, strict=True)),
        )


_SUMS = [gpu_history.c[f"{m}_sum"] for m in METRICS]
_COUNTS = [gpu_history.c[f"{m}_n"] for m in METRICS]
_MAXES = [gpu_history.c[f"{m}_max"] for m in METRICS]
_KEY = ["gpu_pk", "step_s", "bucket"]


class HistoryStore:
    """Writes, rolls up, prunes and reads ``gpu_history``; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, rows: Sequence[HistoryRow]) -> None:
        """Merge ``rows`` into the stored aggregates in one transaction. Rows of GPUs that are
        unknown or retired are dropped (nothing will read them)."""
        merged = _merge(rows)
        if not merged:
            return
        insert = upsert_insert(self.store.dialect, gpu_history)
        new = insert.excluded
        upsert = insert.on_conflict_do_update(
            index_elements=_KEY,
            set_={
                "n": gpu_history.c.n + new.n,
                **{c.name: c + new[c.name] for c in (*_SUMS, *_COUNTS)},
                **{c.name: _greatest(c, new[c.name]) for c in _MAXES},
            },
        )
        with self.store.write() as conn:
            pks = dict(
                conn.execute(
                    select(gpus.c.id, gpus.c.pk)
                    .where(gpus.c.id.in_({row.gpu_id for row in merged}))
                    .where(gpus.c.retired.is_(False))
                ).all()
            )
            # In key order: concurrent writers (PostgreSQL) then lock rows in one order and
            # cannot deadlock on each other.
            params = sorted(
                (_values(row, pks[row.gpu_id]) for row in merged if row.gpu_id in pks),
                key=lambda v: (v["gpu_pk"], v["step_s"], v["bucket"]),
            )
            if params:
                conn.execute(upsert, params)

    def rollup(self, step_from: int, step_to: int, start: int, end: int) -> int:
        """Replace the ``step_to`` rows of ``[start, end)`` (floored to ``step_to``) with the
        aggregates of the ``step_from`` rows in them; return how many rows were written.

        Replacing, not adding, makes a re-run (a new leader, a retry) harmless. Target rows
        whose source rows are gone (pruned) are kept, not replaced by nothing.
        """
        start, end = start - start % step_to, end - end % step_to
        if end <= start:
            return 0
        src = gpu_history.alias("src")
        target_bucket = src.c.bucket - src.c.bucket % _number(step_to)
        aggregate = (
            select(
                src.c.gpu_pk,
                _number(step_to).label("step_s"),
                target_bucket.label("bucket"),
                func.sum(src.c.n),
                *(func.sum(src.c[c.name]) for c in (*_SUMS, *_COUNTS)),
                *(func.max(src.c[c.name]) for c in _MAXES),
            )
            .where(src.c.step_s == step_from, src.c.bucket >= start, src.c.bucket < end)
            .group_by(src.c.gpu_pk, target_bucket)
        )
        has_source = exists().where(
            src.c.gpu_pk == gpu_history.c.gpu_pk,
            src.c.step_s == step_from,
            src.c.bucket >= gpu_history.c.bucket,
            src.c.bucket < gpu_history.c.bucket + step_to,
        )
        columns = ["gpu_pk", "step_s", "bucket", "n"]
        columns += [c.name for c in (*_SUMS, *_COUNTS, *_MAXES)]
        with self.store.write() as conn:
            conn.execute(
                delete(gpu_history).where(
                    gpu_history.c.step_s == step_to,
                    gpu_history.c.bucket >= start,
                    gpu_history.c.bucket < end,
                    has_source,
                )
            )
            # Counted from RETURNING: psycopg reports no rowcount for INSERT ... SELECT here.
            written = gpu_history.insert().from_select(columns, aggregate)
            return len(conn.execute(written.returning(gpu_history.c.gpu_pk)).all())

    def prune(self, step_s: int, before: int) -> int:
        """Delete the ``step_s`` rows with buckets before ``before``; return how many."""
        with self.store.write() as conn:
            result = conn.execute(
                delete(gpu_history).where(
                    gpu_history.c.step_s == step_s, gpu_history.c.bucket < before
                )
            )
            return int(result.rowcount)

    def query(self, node_id: str, step_s: int, start: int, end: int) -> list[HistoryRow]:
        """The node's live GPUs' ``step_s`` rows with ``start <= bucket < end``, by GPU
        position, then bucket."""
        query = (
            select(
                gpus.c.id,
                gpu_history.c.step_s,
                gpu_history.c.bucket,
                gpu_history.c.n,
                *_SUMS,
                *_COUNTS,
                *_MAXES,
            )
            .join_from(gpu_history, gpus)
            .join(nodes)
            .where(nodes.c.id == node_id, gpus.c.retired.is_(False))
            .where(gpu_history.c.step_s == step_s)
            .where(gpu_history.c.bucket >= start, gpu_history.c.bucket < end)
            .order_by(gpus.c.position, gpus.c.pk, gpu_history.c.bucket)
        )
        with self.store.read() as conn:
            return [_row(row) for row in conn.execute(query)]


def _merge(rows: Sequence[HistoryRow]) -> list[HistoryRow]:
    """Rows with the same key added up first: one statement must not upsert a key twice."""
    by_key: dict[tuple[str, int, int], HistoryRow] = {}
    for row in rows:
        key = (row.gpu_id, row.step_s, row.bucket)
        known = by_key.get(key)
        by_key[key] = row if known is None else known.merged(row)
    return list(by_key.values())


def _greatest(old: ColumnElement[Any], new: ColumnElement[Any]) -> ColumnElement[Any]:
    """The larger of two maxima where ``NULL`` means "no reading" (SQLite's two-argument
    ``max`` and a bare comparison would both give ``NULL``)."""
    return case(
        (new.is_(None), old),
        (old.is_(None), new),
        (new > old, new),
        else_=old,
    )


def _number(value: int) -> ColumnElement[Any]:
    """An integer rendered into the SQL, not bound: PostgreSQL matches GROUP BY expressions
    by text, and two bound parameters are two different expressions to it."""
    return literal_column(str(int(value)), Integer)


def _values(row: HistoryRow, gpu_pk: int) -> dict[str, object]:
    values: dict[str, object] = {
        "gpu_pk": gpu_pk,
        "step_s": row.step_s,
        "bucket": row.bucket,
        "n": row.n,
    }
    for i, metric in enumerate(METRICS):
        values[f"{metric}_sum"] = row.sums[i]
        values[f"{metric}_n"] = row.counts[i]
        values[f"{metric}_max"] = row.maxes[i]
    return values


def _row(row: Any) -> HistoryRow:
    k = len(METRICS)
    values = tuple(row)[4:]
    return HistoryRow(
        row[0],
        int(row[1]),
        int(row[2]),
        int(row[3]),
        _quad(float(v) for v in values[:k]),
        _quad(int(v) for v in values[k : 2 * k]),
        _quad(None if v is None else float(v) for v in values[2 * k :]),
    )


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None or a >= b else b


def _quad(values: Iterable[T]) -> tuple[T, T, T, T]:
    """Four values (one per metric) as the fixed-size tuple the row fields are typed as."""
    a, b, c, d = values
    return (a, b, c, d)
