"""Claims are the only record of allocations (issue #13, ADR 0010 item 8), on SQLite and on
PostgreSQL: every booking and job read gives the owner's claims in position order (a job's of
its current run), and migration 0005 moves a database at 0004 there without changing what any
booking or job reads, and back."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from jobs_kit import HOUR, NOW, job

from procplan.core.bookings import BookingLimits
from procplan.core.jobs import OPEN_END, Job, JobKind, JobState, Plan, Start
from procplan.core.model import Booking, BookingRequest
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.store.bookings_repo import BookingFilter, BookingStore
from procplan.store.engine import Store
from procplan.store.jobs_repo import JobFilter, JobStore
from procplan.store.migrate import alembic_config, upgrade
from procplan.store.tables import metadata
from procplan.store.topology_repo import sync_topology
from procplan.testing import FakeClock

SEP = "\x1f"
A = "node-a-gpu"
B = "node-b-gpu"


# ---------------------------------------------------------------------------- the property


def claimed(store: Store) -> tuple[dict[int, tuple[str, ...]], dict[int, tuple[str, ...]]]:
    """Every booking's claims and every job's claims of its current run, in position order,
    read straight from the claims table (``()`` for an owner without any)."""
    query = sa.text(
        "SELECT c.booking_id, c.job_id, c.position, g.id, c.run, j.requeues"
        " FROM claims AS c JOIN gpus AS g ON g.pk = c.gpu_pk"
        " LEFT JOIN jobs AS j ON j.id = c.job_id"
    )
    by_booking: dict[int, list[tuple[int, str]]] = defaultdict(list)
    by_job: dict[int, list[tuple[int, str]]] = defaultdict(list)
    with store.read() as conn:
        for booking_id, job_id, position, gpu_id, claim_run, requeues in conn.execute(query):
            if booking_id is not None:
                by_booking[booking_id].append((position, gpu_id))
            elif claim_run == requeues:
                by_job[job_id].append((position, gpu_id))
        booking_ids = conn.execute(sa.text("SELECT id FROM bookings")).scalars().all()
        job_ids = conn.execute(sa.text("SELECT id FROM jobs")).scalars().all()

    def ordered(found: list[tuple[int, str]]) -> tuple[str, ...]:
        positions = [p for p, _ in found]
        assert len(set(positions)) == len(positions), f"positions repeat: {found}"
        return tuple(g for _, g in sorted(found))

    return (
        {b: ordered(by_booking[b]) for b in booking_ids},
        {j: ordered(by_job[j]) for j in job_ids},
    )


def read_gpus(store: Store) -> tuple[dict[int, tuple[str, ...]], dict[int, tuple[str, ...]]]:
    """Every booking's and job's ``gpu_ids`` through each read path (one by one, a page, the
    mirrors), checked to agree with one another."""
    bs, js = BookingStore(store), JobStore(store)
    page, _ = bs.page(BookingFilter(limit=10_000))
    bookings = {b.id: b.gpu_ids for b in page}
    assert {b: bs.get(b).gpu_ids for b in bookings} == bookings  # type: ignore[union-attr]
    mirrored: list[Booking] = bs.window(None, 0, 1 << 40)
    assert {b.id: b.gpu_ids for b in mirrored} == bookings
    jobs_page, _ = js.page(JobFilter(limit=10_000))
    jobs = {j.id: j.gpu_ids for j in jobs_page}
    assert {j: js.load(j).gpu_ids for j in jobs} == jobs
    pending, running = js.active()
    assert {j.id: j.gpu_ids for j in (*pending, *running)}.items() <= jobs.items()
    return bookings, jobs


def run(js: JobStore, j: Job, *gpus: str, now: int) -> None:
    """Start ``j`` on these GPUs of node-b, in this order."""
    result = js.apply(Plan(starts=(Start(j.id, ("node-b",), gpus, OPEN_END),)), now, 30)
    assert [s.id for s in result.started] == [j.id], result
    assert result.started[0].gpu_ids == gpus


def test_reads_are_the_claims_in_position_order(db: Store) -> None:
    """A random mix of bookings (explicit GPUs in any order, by count; cancelled, released,
    extended) and jobs (started on GPUs in any order, CPU-only, finished, requeued and
    started again): every read is the owner's claims in position order."""
    clock = FakeClock(NOW)
    service = BookingService(db, clock, BookingLimits())
    service.replace_topology(demo_topology())
    js = JobStore(db, service.bookings.mirror)
    rng = random.Random(13)
    made: list[int] = []
    for k in range(24):
        at = NOW + (k + 1) * 2 * HOUR
        if k % 3 == 2:
            req = BookingRequest("node-a", at, at + HOUR, "ada", "c", gpu_count=rng.randint(1, 3))
        else:
            gpus = rng.sample([f"{A}{i}" for i in range(4)], rng.randint(1, 4))
            req = BookingRequest("node-a", at, at + HOUR, "bob", "x", gpu_ids=tuple(gpus))
        made.append(service.create(req, whole_hours=False).id)
    service.cancel(made[0])
    service.change_end(made[1], NOW + 4 * HOUR + 30 * 60)
    clock.set(NOW + 2 * HOUR + 10 * 60)
    service.release(made[0 + 2], whole_hours=False)

    batch = [job(gpu_count=n) for n in (3, 2, 0, 1)]
    a, b, cpu, d = js.submit(batch, NOW)
    run(js, a, f"{B}5", f"{B}1", f"{B}3", now=NOW)
    run(js, b, f"{B}7", f"{B}0", now=NOW)
    assert js.apply(Plan(starts=(Start(cpu.id, ("node-b",), (), NOW + HOUR),)), NOW, 30).started
    js.finish(b.id, JobState.PREEMPTED, NOW + 60)
    js.requeue(b.id, NOW + 60)
    assert js.load(b.id).gpu_ids == ()
    run(js, js.load(b.id), f"{B}2", f"{B}7", now=NOW + 120)  # a GPU of its last run again
    js.finish(a.id, JobState.COMPLETED, NOW + 180, exit_code=0)
    [live] = js.submit([job(kind=JobKind.INTERACTIVE, gpu_count=2, pid=7, host="h")], NOW)
    run(js, live, f"{B}6", f"{B}4", now=NOW + 200)

    bookings, jobs = read_gpus(db)
    assert (bookings, jobs) == claimed(db)
    assert jobs[a.id] == (f"{B}5", f"{B}1", f"{B}3")
    assert jobs[b.id] == (f"{B}2", f"{B}7") and js.load(b.id).requeues == 1
    assert jobs[cpu.id] == () and js.load(cpu.id).node_ids == ("node-b",)
    assert jobs[d.id] == () and jobs[live.id] == (f"{B}6", f"{B}4")


# ------------------------------------------------------------------------- migration 0005

T = NOW - 10 * HOUR


@pytest.fixture
def legacy(db: Store) -> Iterator[Store]:
    """``db`` taken down to revision 0004, with the demo topology (synced first: today's
    ``sync_topology`` reads columns that later revisions added)."""
    with db.write() as conn:
        sync_topology(conn, demo_topology(), T)
    _migrate(db, "0004")
    yield db


def _migrate(db: Store, revision: str) -> None:
    config = alembic_config()
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


# Bookings: (status, gpu_ids text, the claims' GPUs in pk order, active).
_BOOKINGS = {
    "explicit": ("active", [f"{A}2", f"{A}0"], [f"{A}2", f"{A}0"], True),
    # The text and the pk order disagree: the text wins.
    "cancelled": ("cancelled", [f"{A}3", f"{A}1"], [f"{A}1", f"{A}3"], False),
    # Legacy: a listed GPU without a claim gets an inactive one.
    "legacy": ("active", [f"{B}0", f"{B}1", f"{B}2"], [f"{B}0", f"{B}2"], True),
}
# Jobs: state, requeues, started_at, ended_at, alloc_nodes, alloc_gpus, claims as
# (GPU, start, end, active) in pk order.
_JOBS = {
    "running": ("running", 0, T, None, "node-b", [f"{B}4", f"{B}3"],
                [(f"{B}4", T, None, True), (f"{B}3", T, None, True)]),
    "requeued, running again": ("running", 1, T + 100, None, "node-b", [f"{B}6", f"{B}5"],
                                [(f"{B}5", T, T + 50, False), (f"{B}6", T + 100, None, True),
                                 (f"{B}5", T + 100, None, True)]),
    "requeued, pending": ("pending", 2, None, None, None, [], [(f"{B}7", T, T + 9, False)]),
    "cpu only": ("running", 0, T, None, "node-a", [], []),
    "completed": ("completed", 0, T, T + 10, "node-a", [f"{A}1"], [(f"{A}1", T, T + 10, False)]),
    "pending": ("pending", 0, None, None, None, [], []),
    # Requeued and started again within one second, on the same GPU: the newest claim is
    # the current run's.
    "same second": ("running", 1, T, None, "node-a", [f"{A}3"],
                    [(f"{A}3", T, T, False), (f"{A}3", T, None, True)]),
}  # fmt: skip


def _fill_legacy(db: Store) -> tuple[dict[int, tuple[str, ...]], dict[int, tuple[str, ...]]]:
    """The rows of ``_BOOKINGS`` and ``_JOBS`` at revision 0004: what each reads as."""
    bookings: dict[int, tuple[str, ...]] = {}
    jobs: dict[int, tuple[str, ...]] = {}
    with db.write() as conn:
        pks = dict(conn.execute(sa.text("SELECT id, pk FROM gpus")).all())
        nodes = dict(conn.execute(sa.text("SELECT id, pk FROM nodes")).all())
        user = conn.execute(
            sa.text("INSERT INTO users (name, created_at) VALUES ('ada', 0) RETURNING pk")
        ).scalar_one()
        tenant = conn.execute(sa.text("SELECT pk FROM tenants WHERE id = 'default'")).scalar_one()
        claim = sa.text(
            "INSERT INTO claims (booking_id, job_id, gpu_pk, start_s, end_s, active)"
            " VALUES (:b, :j, :g, :s, :e, :a)"
        )
        for k, (status, text, claim_gpus, active) in enumerate(_BOOKINGS.values()):
            start, end = T + k * HOUR, T + (k + 1) * HOUR
            node = nodes[text[0].rsplit("-", 1)[0]]
            booking_id = conn.execute(
                sa.text(
                    "INSERT INTO bookings (node_pk, user_pk, label, priority, status, start_s,"
                    " end_s, gpu_ids, created_at, updated_at, version) VALUES (:n, :u, 'x', 2,"
                    " :status, :s, :e, :ids, 0, 0, 1) RETURNING id"
                ),
                {"n": node, "u": user, "status": status, "s": start, "e": end}
                | {"ids": SEP.join(text)},
            ).scalar_one()
            bookings[booking_id] = tuple(text)
            for gpu in claim_gpus:
                values = {"b": booking_id, "j": None, "g": pks[gpu], "s": start, "e": end}
                conn.execute(claim, values | {"a": active})
        for state, requeues, started, ended, nodes_text, text, job_claims in _JOBS.values():
            job_id = conn.execute(
                sa.text(
                    "INSERT INTO jobs (user_pk, tenant_pk, kind, name, state, priority,"
                    " gpu_count, nodes, submitted_at, started_at, ended_at, alloc_nodes,"
                    " alloc_gpus, borrowed, requeues, command, env, message, extra, version)"
                    " VALUES (:u, :t, 'batch', 'j', :state, 0, :n, 1, :sub, :started, :ended,"
                    " :nodes, :gpus, false, :requeues, '[]', '[]', '', '{}', 1) RETURNING id"
                ),
                {"u": user, "t": tenant, "state": state, "n": len(text), "sub": T - HOUR,
                 "started": started, "ended": ended, "nodes": nodes_text,
                 "gpus": SEP.join(text) or None, "requeues": requeues},
            ).scalar_one()  # fmt: skip
            jobs[job_id] = tuple(text)
            for gpu, start, end, active in job_claims:
                values = {"b": None, "j": job_id, "g": pks[gpu], "s": start, "e": end or 1 << 40}
                conn.execute(claim, values | {"a": active})
        conn.execute(sa.text("UPDATE meta SET value = 1 WHERE key IN ('ledger_version')"))
        conn.execute(sa.text("UPDATE meta SET value = 1 WHERE key IN ('jobs_version')"))
    return bookings, jobs


def _texts(db: Store) -> tuple[dict[int, str], dict[int, str | None]]:
    with db.read() as conn:
        bookings = dict(conn.execute(sa.text("SELECT id, gpu_ids FROM bookings")).all())
        jobs = dict(conn.execute(sa.text("SELECT id, alloc_gpus FROM jobs")).all())
    return bookings, jobs


def _columns(db: Store, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(db.engine).get_columns(table)}


def test_migration_0005_keeps_every_allocation_and_goes_back(legacy: Store) -> None:
    db = legacy
    before = _fill_legacy(db)
    texts = _texts(db)
    upgrade(db)

    assert "gpu_ids" not in _columns(db, "bookings")
    assert "alloc_gpus" not in _columns(db, "jobs") and "alloc_nodes" in _columns(db, "jobs")
    assert {"position", "run"} <= _columns(db, "claims")
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    touched = ("'position'", "'run'", "'gpu_ids'", "'alloc_gpus'")
    assert [d for d in diffs if any(name in repr(d) for name in touched)] == []

    assert read_gpus(db) == claimed(db) == before
    js = JobStore(db)
    ids = {name: job_id for name, job_id in zip(_JOBS, before[1], strict=True)}
    assert js.load(ids["cpu only"]).node_ids == ("node-a",)
    with db.read() as conn:
        runs = conn.execute(
            sa.text("SELECT run, count(*) FROM claims WHERE job_id = :j GROUP BY run ORDER BY run"),
            {"j": ids["requeued, running again"]},
        ).all()
        legacy_claims = conn.execute(
            sa.text("SELECT position, active FROM claims WHERE booking_id = :b ORDER BY position"),
            {"b": list(before[0])[2]},
        ).all()
    assert [tuple(r) for r in runs] == [(-1, 1), (1, 2)]
    assert [(p, bool(a)) for p, a in legacy_claims] == [(0, True), (1, False), (2, True)]

    _migrate(db, "0004")
    assert "position" not in _columns(db, "claims") and "run" not in _columns(db, "claims")
    assert _texts(db) == texts
    upgrade(db)
    assert read_gpus(db) == claimed(db) == before
