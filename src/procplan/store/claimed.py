"""The GPUs a booking or a job holds, read from its claims: claims are the only record of an
allocation (ADR 0010, item 8).

Every booking and job read selects one extra column, a correlated subquery that aggregates the
owner's claims into one string of ``position`` + ``POSITION_SEPARATOR`` + GPU id entries,
joined with ``GPU_ID_SEPARATOR``. String aggregates do not keep an order on every backend
(SQLite 3.40's ``group_concat`` takes no ORDER BY), so each entry carries its position and
``split_claimed`` sorts by it.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, ScalarSelect, String, cast, func, literal, select

from procplan.store.tables import GPU_ID_SEPARATOR, POSITION_SEPARATOR, claims, gpus

__all__ = ["claimed_gpus", "split_claimed"]


def claimed_gpus(*where: ColumnElement[bool]) -> ScalarSelect[str]:
    """The aggregated GPUs of the claims matching ``where`` (correlated to the outer row)."""
    entry = cast(claims.c.position, String) + literal(POSITION_SEPARATOR, String) + gpus.c.id
    return (
        select(func.aggregate_strings(entry, GPU_ID_SEPARATOR))
        .select_from(claims)
        .join(gpus, gpus.c.pk == claims.c.gpu_pk)
        .where(*where)
        .scalar_subquery()
    )


def split_claimed(text: str | None) -> tuple[str, ...]:
    """The GPU ids of a ``claimed_gpus`` value, in position order (``()`` for none)."""
    if not text:
        return ()
    entries = text.split(GPU_ID_SEPARATOR)
    if len(entries) == 1:
        return (entries[0].partition(POSITION_SEPARATOR)[2],)
    pairs = [entry.partition(POSITION_SEPARATOR) for entry in entries]
    pairs.sort(key=_position)
    return tuple(gpu_id for _, _, gpu_id in pairs)


def _position(pair: tuple[str, str, str]) -> int:
    return int(pair[0])
