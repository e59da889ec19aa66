"""JobStore on PostgreSQL: the exclusion constraint that keeps job claims apart, the check
that a claim has one owner, and the write paths with their advisory locks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from jobs_kit import HOUR, NOW, POLICY, book, job, run, start

from procplan.core.bookings import BookingLimits
from procplan.core.jobs import JobState, PendingInfo, Plan, Reason
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.store.engine import Store, make_engine
from procplan.store.jobs_repo import JobStore
from procplan.store.migrate import upgrade
from procplan.store.tables import claims
from procplan.testing import FakeClock

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    opened = Store(make_engine(pg_url))
    upgrade(opened)
    yield opened
    opened.dispose()


def _claim(conn: sa.Connection, **values: object) -> None:
    conn.execute(claims.insert().values(active=True, position=0, **values))


def test_postgres_job_claims_never_overlap(pg_store: Store) -> None:
    service = BookingService(pg_store, FakeClock(NOW), BookingLimits())
    service.replace_topology(demo_topology())
    js = JobStore(pg_store, service.bookings.mirror)
    a, b = js.submit([job(), job("bob")], NOW)
    with pg_store.engine.connect() as conn:
        gpu = conn.execute(sa.text("SELECT pk FROM gpus WHERE id = 'node-a-gpu0'")).scalar_one()
    with pg_store.engine.begin() as conn:
        _claim(conn, job_id=a.id, gpu_pk=gpu, start_s=NOW, end_s=NOW + HOUR)
    overlap = sa.exc.IntegrityError
    with pytest.raises(overlap, match="job_claims_no_overlap"), pg_store.engine.begin() as conn:
        _claim(conn, job_id=b.id, gpu_pk=gpu, start_s=NOW + 10, end_s=NOW + 20)
    with pytest.raises(overlap, match="ck_claims_one_owner"), pg_store.engine.begin() as conn:
        _claim(conn, gpu_pk=gpu, start_s=NOW + 10, end_s=NOW + 20)
    # Adjacent job claims do not overlap; inactive ones are ignored.
    with pg_store.engine.begin() as conn:
        _claim(conn, job_id=b.id, gpu_pk=gpu, start_s=NOW + HOUR, end_s=NOW + 2 * HOUR)
        conn.execute(
            claims.insert().values(
                job_id=b.id, gpu_pk=gpu, start_s=NOW, end_s=NOW + 9, active=False, position=0
            )
        )
    # A booking claim over a job claim is legal for the database (rule 4 is checked in code).
    booking = book(service, "bob", "node-a-gpu1", NOW, NOW + HOUR)
    with pg_store.engine.begin() as conn:
        _claim(conn, booking_id=booking, gpu_pk=gpu, start_s=NOW, end_s=NOW + HOUR)


def test_postgres_submit_apply_finish(pg_store: Store) -> None:
    service = BookingService(pg_store, FakeClock(NOW), BookingLimits())
    service.replace_topology(demo_topology())
    js = JobStore(pg_store, service.bookings.mirror)
    book(service, "bob", "node-a-gpu1", NOW, NOW + HOUR)
    a, b, c = js.submit([job(), job(), job()], NOW)
    result = js.apply(
        Plan(
            starts=(start(a, "node-a-gpu0"), start(b, "node-a-gpu1"), start(c, "node-a-gpu0")),
            pending={c.id: PendingInfo(Reason.RESOURCES, 1)},
        ),
        NOW,
        30,
    )
    assert [j.id for j in result.started] == [a.id] and result.skipped == [b.id, c.id]
    other = JobStore(pg_store)
    s = other.snapshot(NOW, demo_topology(), POLICY)
    assert [j.id for j in s.running] == [a.id] and len(s.bookings) == 1
    js.finish(a.id, JobState.COMPLETED, NOW + 60)
    assert run(js, c, "node-a-gpu0", now=NOW + 60).state is JobState.RUNNING
    assert other.snapshot(NOW + 60, demo_topology(), POLICY).running[0].id == c.id
