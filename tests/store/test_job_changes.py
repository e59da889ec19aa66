"""One job record: a job is a spec and a status, only ``Job.changed`` changes it after
submission, and every store write states its change once, so the object a write returns is
what a fresh read of the row gives (SQLite and PostgreSQL)."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobs_kit import NOW, job, run
from sqlalchemy import select

from procplan.core.bookings import BookingLimits
from procplan.core.jobs import (
    SPEC_FIELDS,
    STATUS_FIELDS,
    Blockers,
    Job,
    JobKind,
    JobSpec,
    JobState,
    JobStatus,
    PendingInfo,
    Plan,
    Preemption,
    Reason,
    StatusChange,
)
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.store.engine import Store
from procplan.store.job_changes import StatusUpdate, write_change
from procplan.store.job_rows import CLAIMED_FIELDS, STATUS_COLUMNS, row_values
from procplan.store.job_writes import load_job
from procplan.store.jobs_repo import JobStore
from procplan.store.tables import jobs
from procplan.testing import FakeClock

# ------------------------------------------------------------------------------ the types


def test_a_job_is_its_id_spec_and_status() -> None:
    names = [f.name for f in dataclasses.fields(Job)]
    assert names == ["id", *SPEC_FIELDS, *STATUS_FIELDS]
    assert not set(SPEC_FIELDS) & set(STATUS_FIELDS)
    assert set(StatusChange.__annotations__) == set(STATUS_FIELDS)
    j = job(name="x", gpu_count=2, state=JobState.RUNNING, gpu_ids=("g",), queue_position=3)
    assert isinstance(j.spec, JobSpec) and isinstance(j.status, JobStatus)
    assert (j.spec.name, j.status.state, j.status.queue_position) == ("x", JobState.RUNNING, 3)
    assert Job.of(j.id, j.spec, j.status) == j
    assert Job.of(5, JobSpec(user="u"), JobStatus()) == Job(id=5, user="u")


@given(
    spec_field=st.sampled_from(("id", *SPEC_FIELDS)),
    status=st.sets(st.sampled_from(STATUS_FIELDS)),
)
def test_changed_refuses_anything_but_status_fields(spec_field: str, status: set[str]) -> None:
    j = job()
    change: dict[str, Any] = {name: getattr(j, name) for name in status}
    change[spec_field] = getattr(j, spec_field)
    with pytest.raises(ValueError, match=spec_field):
        j.changed(change)  # type: ignore[arg-type]


def test_changed_applies_the_change_and_nothing_else() -> None:
    j = job(name="x")
    moved = j.changed({"state": JobState.RUNNING, "started_at": NOW, "queue_position": None})
    assert (moved.state, moved.started_at, moved.name) == (JobState.RUNNING, NOW, "x")
    assert moved.spec == j.spec
    assert j.changed({}) is j


def test_every_status_field_has_a_column_or_is_claimed() -> None:
    """The allocation's GPUs are claims (``CLAIMED_FIELDS``): no column, no row value."""
    assert frozenset({"gpu_ids"}) == CLAIMED_FIELDS
    assert set(STATUS_COLUMNS) == set(STATUS_FIELDS) - CLAIMED_FIELDS
    assert {column for column, _ in STATUS_COLUMNS.values()} <= set(jobs.c.keys())
    values = row_values({"state": JobState.FAILED, "reason": Reason.BOOKED, "gpu_ids": ("a", "b")})
    assert values == {"state": "failed", "reason": "Booked"}
    assert row_values({"node_ids": ()}) == {"alloc_nodes": None}


def test_an_ad_hoc_write_never_claims_gpus(jdb: JobStore) -> None:
    [pending] = jdb.submit([job()], NOW)
    with jdb.store.write() as conn, pytest.raises(ValueError, match="claims"):
        write_change(conn, pending, {"gpu_ids": ("node-a-gpu0",)})
    assert jdb.load(pending.id).gpu_ids == ()


def test_a_prebuilt_update_takes_exactly_its_fields() -> None:
    with pytest.raises(ValueError, match="not job status fields"):
        StatusUpdate(("state", "name"))
    update = StatusUpdate(("preempt_at", "message"))
    with pytest.raises(ValueError):
        update.params(1, {"preempt_at": NOW})
    assert update.params(1, {"preempt_at": NOW, "message": "m"}) == {
        "j_id": 1,
        "s_preempt_at": NOW,
        "s_message": "m",
    }
    claimed = StatusUpdate(("state", "gpu_ids"))
    with pytest.raises(ValueError):
        claimed.params(1, {"state": JobState.RUNNING})
    assert claimed.params(1, {"state": JobState.RUNNING, "gpu_ids": ("a",)}) == {
        "j_id": 1,
        "s_state": "running",
    }


def test_store_job_writes_change_jobs_only_through_changed() -> None:
    """No ``dataclasses.replace`` of a Job in the job store modules (a spec, before the job
    exists, may be completed by the store: ``submitted_at``, ``array_id``)."""
    store_dir = Path(__file__).resolve().parents[2] / "src" / "procplan" / "store"
    for path in [*store_dir.glob("job_*.py"), store_dir / "jobs_repo.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            callee = ast.unparse(node.func)
            if callee in ("replace", "dataclasses.replace"):
                target = ast.unparse(node.args[0])
                assert target.endswith("spec"), f"{path.name}:{node.lineno}: replace({target})"


# ------------------------------------------------------------------- writes and fresh reads


@pytest.fixture
def jdb(db: Store) -> Iterator[JobStore]:
    """A JobStore on the demo topology, on SQLite and on PostgreSQL."""
    bookings = BookingService(db, FakeClock(NOW), BookingLimits())
    bookings.replace_topology(demo_topology())
    yield JobStore(db, bookings.bookings.mirror)


def _stored(js: JobStore, job_id: int) -> Job:
    fresh = JobStore(js.store).load(job_id)
    assert fresh == js.load(job_id)
    return fresh


def test_every_write_returns_what_a_fresh_read_gives(jdb: JobStore) -> None:
    js = jdb
    batch, waiting, live = js.submit(
        [job(extra={"k": 1}), job("bob"), job(kind=JobKind.INTERACTIVE, pid=7, host="h")], NOW
    )
    assert batch == _stored(js, batch.id) and live == _stored(js, live.id)

    started = run(js, batch, "node-a-gpu0", end=NOW + 600)  # start
    assert started == _stored(js, batch.id)
    plan = Plan(pending={waiting.id: PendingInfo(Reason.RESOURCES, 4, NOW + 60)})
    assert js.apply(plan, NOW, 30).changed  # pending info
    stored = _stored(js, waiting.id)
    assert (stored.reason, stored.queue_position, stored.estimated_start) == (
        Reason.RESOURCES,
        4,
        NOW + 60,
    )

    launched = js.record_launch(batch.id, 0, 4242, "node-a", 12.5)
    assert launched is not None and launched.pid == 4242
    assert launched == _stored(js, batch.id)

    preempted = js.apply(Plan(preemptions=(Preemption(batch.id, None, "make room"),)), NOW + 5, 30)
    assert [j.id for j in preempted.preempted] == [batch.id]
    assert preempted.preempted[0] == _stored(js, batch.id)

    ended = js.finish(batch.id, JobState.PREEMPTED, NOW + 9, exit_code=143, message="bye")
    assert ended == _stored(js, batch.id)
    requeued = js.requeue(batch.id, NOW + 10)
    assert requeued.requeues == 1 and requeued.gpu_ids == () and requeued.pid is None
    assert requeued == _stored(js, batch.id)

    running_live = run(js, live, "node-a-gpu1", now=NOW + 20)
    assert running_live == _stored(js, live.id)
    renewed = js.heartbeat(live.id, NOW + 25, 30)
    assert renewed.lease_expires_at == NOW + 55 and renewed == _stored(js, live.id)
    done = js.finish(live.id, JobState.COMPLETED, NOW + 30, exit_code=0)
    assert done.queue_position is None and done == _stored(js, live.id)
    cancelled = js.finish(waiting.id, JobState.CANCELLED, NOW + 31)
    assert cancelled.queue_position is None and cancelled == _stored(js, waiting.id)


_instants = st.none() | st.integers(0, 1 << 40)
_small = st.integers(-(1 << 31), (1 << 31) - 1)
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\x1f"))
_ids = st.lists(st.text(st.sampled_from("abcxyz-0123"), min_size=1, max_size=8), max_size=3)
_STATUS_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "state": st.sampled_from(JobState),
    "started_at": _instants,
    "ended_at": _instants,
    "node_ids": _ids.map(tuple),
    # The GPUs are claims, which only a start writes (job_apply); ``write_change`` refuses
    # any other value, and a job that never started has none.
    "gpu_ids": st.just(()),
    "borrowed": st.booleans(),
    "preempt_at": _instants,
    "reason": st.none() | st.sampled_from(Reason),
    "estimated_start": _instants,
    "queue_position": st.none() | _small,
    "waits_for": st.builds(
        Blockers,
        st.lists(st.integers(1, 1 << 30), max_size=3).map(lambda ids: tuple(sorted(ids))),
        st.lists(st.integers(1, 1 << 30), max_size=3).map(lambda ids: tuple(sorted(ids))),
    ),
    "exit_code": st.none() | _small,
    "requeues": st.integers(0, 1000),
    "pid": st.none() | st.integers(1, 1 << 22),
    "host": st.none() | _text.map(lambda s: s[:200]),
    "lease_expires_at": _instants,
    "message": _text,
    "version": st.integers(1, 1 << 40),
    "preemptions": st.integers(0, 1000),
    "preempted_by": st.none() | st.integers(1, 1 << 30),
    "last_preempted_at": _instants,
}


def test_the_strategies_cover_every_status_field() -> None:
    assert set(_STATUS_VALUES) == set(STATUS_FIELDS)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(change=st.fixed_dictionaries({}, optional=_STATUS_VALUES))
def test_any_status_change_round_trips(jdb: JobStore, change: dict[str, Any]) -> None:
    """Row values and the object agree for every status field, whatever the change."""
    js = jdb
    with js.store.read() as conn:
        job_id = conn.execute(select(jobs.c.id)).scalar()
    if job_id is None:
        job_id = js.submit([job()], NOW)[0].id
    with js.store.write() as conn:
        before = load_job(conn, job_id)
        after = write_change(conn, before, change)  # type: ignore[arg-type]
    assert after == _stored(js, job_id)
    assert after.spec == before.spec
