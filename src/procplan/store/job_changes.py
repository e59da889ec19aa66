"""A job's status change, stated once: the same ``StatusChange`` gives the row's values
(``job_rows.row_values``, the one mapping of status fields to columns) and the new ``Job``
(``Job.changed``, which refuses anything but status fields).

``write_change`` is the ad-hoc write (one job, in a ``job_writes`` transaction);
``StatusUpdate`` is a statement built once for a fixed set of fields, for the paths where
building a statement per call would cost more than executing it (``job_apply``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, Update, bindparam, update

from procplan.core.jobs import Job, StatusChange
from procplan.store.job_rows import CLAIMED_FIELDS, STATUS_COLUMNS, row_values
from procplan.store.tables import jobs


def write_change(conn: Connection, job: Job, change: StatusChange, **row_only: object) -> Job:
    """Write ``change`` to ``job``'s row and return the job with it. ``row_only``: columns the
    row keeps and the ``Job`` does not (``pid_started``). The allocation's GPUs are claims,
    which only a start writes (``job_apply``): a change may clear them (a requeue: the next
    run has no claims yet), never set them."""
    changed = job.changed(change)  # first: it refuses anything but status fields
    if any(change.get(name) for name in CLAIMED_FIELDS):
        raise ValueError(f"{sorted(CLAIMED_FIELDS)} are claims: only a start writes them")
    values = row_values(change) | row_only
    if values:
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(values))
    return changed


class StatusUpdate:
    """``UPDATE jobs SET <the columns of fields> WHERE id = :j_id AND <where>``, built once.

    ``write`` runs it for one job; ``params(job_id, change)`` gives its bind values (for an
    ``executemany``). A change must name exactly ``fields``; those stored as claims
    (``CLAIMED_FIELDS``) are in the returned ``Job`` only: the caller writes the claims.
    """

    __slots__ = ("_binds", "_size", "statement")

    def __init__(self, fields: Iterable[str], *where: ColumnElement[bool]) -> None:
        given = set(fields)
        names = sorted(given - CLAIMED_FIELDS)
        unknown = [name for name in names if name not in STATUS_COLUMNS]
        if unknown:
            raise ValueError(f"not job status fields: {unknown}")
        self._size = len(given)
        # (field, bind name, encoder): bind names differ from column names (SQLAlchemy
        # reserves those for itself).
        self._binds = tuple(
            (name, f"s_{STATUS_COLUMNS[name][0]}", STATUS_COLUMNS[name][1]) for name in names
        )
        setters: dict[str, Any] = {
            STATUS_COLUMNS[name][0]: bindparam(bind) for name, bind, _ in self._binds
        }
        self.statement: Update = (
            update(jobs).where(jobs.c.id == bindparam("j_id"), *where).values(setters)
        )

    def params(self, job_id: int, change: StatusChange) -> dict[str, Any]:
        """The bind values of ``change`` (encoded as ``job_rows.row_values`` does) for job
        ``job_id``; ``ValueError`` unless ``change`` names exactly this update's fields."""
        if len(change) != self._size:
            raise ValueError(f"change {sorted(change)} is not of {[b[0] for b in self._binds]}")
        params: dict[str, Any] = {"j_id": job_id}
        values: Mapping[str, object] = change
        try:
            for name, bind, encode in self._binds:
                value = values[name]
                params[bind] = value if encode is None else encode(value)
        except KeyError as missing:
            raise ValueError(f"change {sorted(change)} lacks {missing}") from None
        return params

    def write(self, conn: Connection, job: Job, change: StatusChange) -> Job | None:
        """Write ``change`` to ``job``'s row; the job with it, or ``None`` when the row no
        longer matched ``where`` (nothing written)."""
        changed = job.changed(change)
        if conn.execute(self.statement, self.params(job.id, change)).rowcount != 1:
            return None
        return changed
