"""Claims are the only record of allocations (issue #13, ADR 0010 item 8).

``bookings.gpu_ids`` and ``jobs.alloc_gpus`` repeated what the claims say; they are dropped.
Two claim columns keep what only they said:

- ``claims.position``: the GPU's place in its booking's or job's allocation (the order the
  API shows: request order for explicit GPUs, configuration order for a count);
- ``claims.run``: for a job claim, the job's ``requeues`` when it started (a requeued job
  claims anew on its next start; older runs' claims stay as history); NULL for bookings.

``jobs.alloc_nodes`` stays: a CPU-only batch job is placed on a node but claims no GPU.

Backfill: positions follow each owner's claims by ``pk`` (the order the writers inserted them
in); a job claim's ``run`` is the job's ``requeues`` when the claim started at the job's
``started_at``, else -1 (an older run). Then each owner is reconciled with the dropped text
(it wins where the two disagree, so every booking and job reads the same GPUs as before):
a GPU listed without a claim gets an inactive claim (legacy data), and a job's claim that
the text does not list goes to run -1.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SEP = "\x1f"  # tables.GPU_ID_SEPARATOR when the text columns existed
_OLDER_RUN = -1

_RUNS = sa.text(
    "UPDATE claims SET run = COALESCE((SELECT jobs.requeues FROM jobs"
    " WHERE jobs.id = claims.job_id AND jobs.started_at = claims.start_s), -1)"
    " WHERE job_id IS NOT NULL"
)
_BOOKING_POSITIONS = sa.text(
    "UPDATE claims SET position = (SELECT count(*) FROM claims AS c"
    " WHERE c.booking_id = claims.booking_id AND c.pk < claims.pk)"
    " WHERE booking_id IS NOT NULL"
)
_JOB_POSITIONS = sa.text(
    "UPDATE claims SET position = (SELECT count(*) FROM claims AS c"
    " WHERE c.job_id = claims.job_id AND c.run = claims.run AND c.pk < claims.pk)"
    " WHERE job_id IS NOT NULL"
)
_SET_CLAIM = sa.text("UPDATE claims SET position = :position, run = :run WHERE pk = :pk")
_ADD_CLAIM = sa.text(
    "INSERT INTO claims (booking_id, job_id, gpu_pk, start_s, end_s, active, position, run)"
    " VALUES (:booking_id, :job_id, :gpu_pk, :start_s, :end_s, :active, :position, :run)"
)


def upgrade() -> None:
    with op.batch_alter_table("claims") as batch:  # NULL until the backfill below
        batch.add_column(sa.Column("position", sa.SmallInteger, nullable=True))
        batch.add_column(sa.Column("run", sa.Integer, nullable=True))
    conn = op.get_bind()
    conn.execute(_RUNS)
    conn.execute(_BOOKING_POSITIONS)
    conn.execute(_JOB_POSITIONS)
    _reconcile(conn)
    with op.batch_alter_table("claims") as batch:
        batch.alter_column("position", existing_type=sa.SmallInteger, nullable=False)
    _drop_column("bookings", "gpu_ids")
    _drop_column("jobs", "alloc_gpus")


def _drop_column(table: str, column: str) -> None:
    # SQLite drops in place (3.35+): a batch copy of a table that claims reference would have
    # to drop it, which ``foreign_keys=ON`` forbids (and would cascade to booking claims).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


# ---- backfill: the text columns win -------------------------------------------------------

# (pk, GPU id, position, run)
_Claim = tuple[int, str, int, int | None]


def _reconcile(conn: sa.Connection) -> None:
    gpu_pks = {str(i): int(pk) for i, pk in conn.execute(sa.text("SELECT id, pk FROM gpus"))}
    by_booking: dict[int, list[_Claim]] = defaultdict(list)
    by_job: dict[int, list[_Claim]] = defaultdict(list)
    claim_rows = conn.execute(
        sa.text(
            "SELECT c.pk, c.booking_id, c.job_id, g.id, c.position, c.run"
            " FROM claims AS c JOIN gpus AS g ON g.pk = c.gpu_pk ORDER BY c.pk"
        )
    )
    for pk, booking_id, job_id, gpu_id, position, run in claim_rows:
        found = by_booking[booking_id] if booking_id is not None else by_job[job_id]
        found.append((pk, gpu_id, position, run))
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    bookings = conn.execute(sa.text("SELECT id, gpu_ids, start_s, end_s FROM bookings"))
    for booking_id, text, start, end in bookings:
        owner = {"booking_id": booking_id, "job_id": None, "start_s": start, "end_s": end}
        wanted = _split(text)
        _place(by_booking.get(booking_id, []), wanted, None, updates)
        inserts += _missing(by_booking.get(booking_id, []), wanted, None, owner, gpu_pks)
    jobs = conn.execute(
        sa.text(
            "SELECT id, alloc_gpus, requeues, COALESCE(started_at, submitted_at),"
            " COALESCE(ended_at, started_at, submitted_at) FROM jobs"
        )
    )
    for job_id, text, requeues, start, end in jobs:
        current = [c for c in by_job.get(job_id, []) if c[3] == requeues]
        wanted = _split(text)
        kept = _place(current, wanted, requeues, updates)
        for claim in current:
            if claim[0] not in kept:
                updates.append({"pk": claim[0], "position": claim[2], "run": _OLDER_RUN})
        owner = {"booking_id": None, "job_id": job_id, "start_s": start, "end_s": end}
        chosen = [c for c in current if c[0] in kept]
        inserts += _missing(chosen, wanted, requeues, owner, gpu_pks)
    if updates:
        conn.execute(_SET_CLAIM, updates)
    if inserts:
        conn.execute(_ADD_CLAIM, inserts)


def _split(text: str | None) -> list[str]:
    return text.split(_SEP) if text else []


def _place(
    found: Sequence[_Claim], wanted: Sequence[str], run: int | None, updates: list[dict[str, Any]]
) -> set[int]:
    """Give each listed GPU's claim (the newest, when several) the GPU's place in ``wanted``;
    for a booking (``run`` None), claims it does not list go after them. The pks placed."""
    newest = {claim[1]: claim for claim in found}  # pk order: the last one wins
    placed: set[int] = set()
    for position, gpu_id in enumerate(wanted):
        claim = newest.get(gpu_id)
        if claim is None or claim[0] in placed:
            continue
        placed.add(claim[0])
        if (claim[2], claim[3]) != (position, run):
            updates.append({"pk": claim[0], "position": position, "run": run})
    if run is None:
        rest = [claim for claim in found if claim[0] not in placed]
        for position, claim in enumerate(rest, start=len(wanted)):
            if claim[2] != position:
                updates.append({"pk": claim[0], "position": position, "run": None})
    return placed


def _missing(
    found: Iterable[_Claim],
    wanted: Sequence[str],
    run: int | None,
    owner: dict[str, Any],
    gpu_pks: dict[str, int],
) -> list[dict[str, Any]]:
    """Inactive claims for the listed GPUs that have none (GPUs unknown here are skipped)."""
    have = {claim[1] for claim in found}
    return [
        owner | {"gpu_pk": gpu_pks[gpu_id], "active": False, "position": position, "run": run}
        for position, gpu_id in enumerate(wanted)
        if gpu_id not in have and gpu_id in gpu_pks
    ]


# ---- downgrade: the text columns again, from the claims ------------------------------------


def downgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:  # NOT NULL needs a default to be added in place (see ``_drop_column``)
        op.execute("ALTER TABLE bookings ADD COLUMN gpu_ids TEXT NOT NULL DEFAULT ''")
    else:
        op.add_column("bookings", sa.Column("gpu_ids", sa.Text, nullable=True))
    op.add_column("jobs", sa.Column("alloc_gpus", sa.Text, nullable=True))
    booking_gpus = conn.execute(
        sa.text(
            "SELECT c.booking_id, g.id FROM claims AS c JOIN gpus AS g ON g.pk = c.gpu_pk"
            " WHERE c.booking_id IS NOT NULL ORDER BY c.booking_id, c.position, c.pk"
        )
    )
    rows = [{"owner": o, "ids": ids} for o, ids in _joined(booking_gpus).items()]
    if rows:
        conn.execute(sa.text("UPDATE bookings SET gpu_ids = :ids WHERE id = :owner"), rows)
    job_gpus = conn.execute(
        sa.text(
            "SELECT c.job_id, g.id FROM claims AS c JOIN gpus AS g ON g.pk = c.gpu_pk"
            " JOIN jobs AS j ON j.id = c.job_id WHERE c.run = j.requeues"
            " ORDER BY c.job_id, c.position, c.pk"
        )
    )
    rows = [{"owner": o, "ids": ids} for o, ids in _joined(job_gpus).items()]
    if rows:
        conn.execute(sa.text("UPDATE jobs SET alloc_gpus = :ids WHERE id = :owner"), rows)
    if not sqlite:
        op.execute("UPDATE bookings SET gpu_ids = '' WHERE gpu_ids IS NULL")
        op.alter_column("bookings", "gpu_ids", existing_type=sa.Text, nullable=False)
    for column in ("run", "position"):
        _drop_column("claims", column)


def _joined(rows: Iterable[Sequence[Any]]) -> dict[int, str]:
    gpus: dict[int, list[str]] = defaultdict(list)
    for owner, gpu_id in rows:
        gpus[owner].append(gpu_id)
    return {owner: _SEP.join(ids) for owner, ids in gpus.items()}
