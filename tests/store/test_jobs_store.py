"""JobStore on SQLite: submit, reads, the snapshot, apply with its ledger re-checks, endings
and leases (the mirror: test_jobs_mirror.py; PostgreSQL: test_jobs_postgres.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sqlalchemy as sa
from jobs_kit import HOUR, NOW, POLICY, book, job, run, start

from procplan.core.errors import Conflict, NotFound
from procplan.core.jobs import (
    OPEN_END,
    JobKind,
    JobState,
    PendingInfo,
    Plan,
    Preemption,
    Reason,
    Start,
    Tenant,
)
from procplan.core.model import Topology
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.store.engine import Store
from procplan.store.jobs_repo import JobFilter, JobStore
from procplan.store.tables import claims, jobs
from procplan.store.tenants_repo import TenantStore

# ----------------------------------------------------------------------- submit and reads


def test_submit_get_and_version(js: JobStore, store: Store) -> None:
    assert js.version() == 0
    [created] = js.submit([job(name="train", gpu_count=2, command=("python", "t.py"))], NOW)
    assert created.id > 0 and created.state is JobState.PENDING
    assert created.reason is Reason.HELD and created.version == js.version() == 1
    got = js.get(created.id)
    assert got is not None
    assert (got.name, got.gpu_count, got.command, got.tenant) == (
        "train",
        2,
        ("python", "t.py"),
        "default",
    )
    assert got.submitted_at == NOW and got.version == 1
    assert js.get(9999) is None


def test_submit_keeps_every_field(js: JobStore) -> None:
    asked = job(
        kind=JobKind.INTERACTIVE, priority=500, nodes=2, gpu_count=4, gpu_kind="H100",
        gpu_memory_mb=40_000, time_limit_s=HOUR, node_id=None, workdir="/w",
        env=(("A", "1"), ("B", "x=y")), stdout_path="o", stderr_path="e", pid=42, host="h",
        lease_expires_at=NOW + 30, message="hi", extra={"cpu_cores": 4, "pid_started": 1.5},
    )  # fmt: skip
    [created] = js.submit([asked], NOW)
    got = js.get(created.id)
    assert got == replace(asked, id=created.id, submitted_at=NOW, reason=Reason.HELD, version=1)


def test_array_jobs_share_the_first_id(js: JobStore) -> None:
    rows = [job(name=f"a[{i}]", array_index=i) for i in (3, 5, 7)]
    created = js.submit(rows, NOW)
    first = created[0].id
    assert [j.array_id for j in created] == [first] * 3
    assert [j.array_index for j in created] == [3, 5, 7]
    assert [js.get(j.id).array_id for j in created] == [first] * 3  # type: ignore[union-attr]
    assert js.version() == 1  # one transaction


def test_submit_needs_an_existing_tenant(js: JobStore) -> None:
    with pytest.raises(NotFound) as err:
        js.submit([job(tenant="nope")], NOW)
    assert err.value.code == "unknown_tenant"
    assert js.version() == 0


def test_page_filters_newest_first(js: JobStore, store: Store) -> None:
    TenantStore(store, js.writes).create(Tenant("lab"), NOW)
    a = js.submit([job("ada", node_id="node-b")], NOW)[0]
    b = js.submit([job("bob", tenant="lab", kind=JobKind.INTERACTIVE)], NOW)[0]
    c = js.submit([job("ada", gpu_count=1)], NOW)[0]
    run(js, c, "node-a-gpu0")

    def ids(flt: JobFilter) -> list[int]:
        return [j.id for j in js.page(flt)[0]]

    assert ids(JobFilter()) == [c.id, b.id, a.id]
    assert js.page(JobFilter(limit=1, offset=1)) == ([js.get(b.id)], 3)
    assert ids(JobFilter(user="ada")) == [c.id, a.id]
    assert ids(JobFilter(tenant="lab")) == [b.id]
    assert ids(JobFilter(states=frozenset({JobState.RUNNING}))) == [c.id]
    assert ids(JobFilter(kind=JobKind.INTERACTIVE)) == [b.id]
    assert ids(JobFilter(node_id="node-b")) == [a.id]
    assert ids(JobFilter(node_id="node-a")) == [c.id]
    assert ids(JobFilter(node_id="node_a")) == []  # LIKE wildcards are escaped


# --------------------------------------------------------------------------------- snapshot


def test_snapshot_holds_queue_bookings_tenants_and_usage(
    js: JobStore, bookings: BookingService
) -> None:
    p = js.submit([job()], NOW)[0]
    r = run(js, js.submit([job("bob")], NOW)[0], "node-a-gpu1", end=NOW + HOUR)
    past = book(bookings, "cy", "node-a-gpu2", NOW - HOUR, NOW)
    future = book(bookings, "cy", "node-a-gpu2", NOW + HOUR, NOW + 2 * HOUR)
    s = js.snapshot(NOW, demo_topology(), POLICY)
    assert [j.id for j in s.pending] == [p.id]
    assert [(j.id, j.gpu_ids, j.state) for j in s.running] == [
        (r.id, ("node-a-gpu1",), JobState.RUNNING)
    ]
    assert [b.id for b in s.bookings] == [future] and past != future
    assert set(s.tenants) == {"default"} and s.usage == {"default": 0.0}
    js.finish(r.id, JobState.COMPLETED, NOW + HOUR)
    later = js.snapshot(NOW + HOUR + POLICY.half_life_s, demo_topology(), POLICY)
    assert later.running == ()
    assert later.usage["default"] == pytest.approx(HOUR / 2)  # one GPU-hour, one half-life


# ------------------------------------------------------------------------------------ apply


def test_apply_starts_a_job(js: JobStore, store: Store) -> None:
    j = js.submit([job(kind=JobKind.INTERACTIVE, gpu_count=2, time_limit_s=HOUR)], NOW)[0]
    result = js.apply(
        Plan(starts=(Start(j.id, ("node-a",), ("node-a-gpu0", "node-a-gpu1"), NOW + HOUR, True),)),
        NOW,
        30,
    )
    [started] = result.started
    assert result.changed and result.skipped == []
    assert started == js.get(j.id)
    assert started.state is JobState.RUNNING and started.started_at == NOW
    assert started.gpu_ids == ("node-a-gpu0", "node-a-gpu1") and started.node_ids == ("node-a",)
    assert started.borrowed and started.lease_expires_at == NOW + 30 and started.reason is None
    with store.read() as conn:
        rows = conn.execute(sa.select(claims.c.job_id, claims.c.end_s, claims.c.active)).all()
    assert rows == [(j.id, NOW + HOUR, True)] * 2


def test_apply_refuses_a_gpu_another_job_holds(js: JobStore) -> None:
    a, b, c = js.submit([job(), job("bob"), job("cy")], NOW)
    run(js, a, "node-a-gpu0", end=NOW + HOUR)
    result = js.apply(Plan(starts=(start(b, "node-a-gpu0"),)), NOW + 10, 30)
    assert result.skipped == [b.id] and result.started == [] and not result.changed
    # Two starts of one plan on one GPU: the second is skipped.
    both = js.apply(Plan(starts=(start(b, "node-a-gpu1"), start(c, "node-a-gpu1"))), NOW, 30)
    assert [j.id for j in both.started] == [b.id] and both.skipped == [c.id]
    # After the first job's time limit its claim no longer collides.
    assert js.apply(Plan(starts=(start(c, "node-a-gpu0"),)), NOW + HOUR, 30).started


def test_apply_refuses_foreign_bookings_but_not_the_users_own(
    js: JobStore, bookings: BookingService
) -> None:
    book(bookings, "bob", "node-a-gpu0", NOW + HOUR, NOW + 2 * HOUR)
    own = book(bookings, "ada", "node-a-gpu1", NOW, NOW + HOUR)
    limited, open_ended, mine, named = js.submit(
        [job(time_limit_s=2 * HOUR), job(), job(time_limit_s=HOUR), job("cy", booking_id=own)],
        NOW,
    )
    refused = js.apply(Plan(starts=(start(limited, "node-a-gpu0", end=NOW + 2 * HOUR),)), NOW, 30)
    assert refused.skipped == [limited.id]
    # Open-ended: only bookings active now count (it is preempted when bob's begins).
    assert run(js, open_ended, "node-a-gpu0").state is JobState.RUNNING
    assert run(js, mine, "node-a-gpu1", end=NOW + HOUR).state is JobState.RUNNING
    js.finish(mine.id, JobState.COMPLETED, NOW)
    # A job that names the booking may use it even though cy does not own it (the service
    # refuses that at submission; the store only follows the ledger rules).
    assert run(js, named, "node-a-gpu1", end=NOW + HOUR).state is JobState.RUNNING


def test_apply_skips_jobs_no_longer_pending_and_retired_gpus(
    js: JobStore, bookings: BookingService
) -> None:
    a, b = js.submit([job(), job()], NOW)
    js.finish(a.id, JobState.CANCELLED, NOW)
    four = demo_topology()
    smaller = Topology((replace(four.nodes[0], gpus=four.nodes[0].gpus[:1]), four.nodes[1]))
    bookings.replace_topology(smaller)
    result = js.apply(Plan(starts=(start(a, "node-a-gpu0"), start(b, "node-a-gpu3"))), NOW, 30)
    assert sorted(result.skipped) == [a.id, b.id] and not result.changed
    wrong_node = js.apply(Plan(starts=(start(b, "node-a-gpu0", node="node-b"),)), NOW, 30)
    assert wrong_node.skipped == [b.id]


def test_pending_info_is_written_only_when_it_changes(js: JobStore, store: Store) -> None:
    created = js.submit([job() for _ in range(5)], NOW)
    js.snapshot(NOW, demo_topology(), POLICY)
    info = {j.id: PendingInfo(Reason.RESOURCES, i + 1, NOW + 60) for i, j in enumerate(created)}
    first = js.apply(Plan(pending=info), NOW, 30)
    assert first.changed and js.version() == 2
    again = js.apply(Plan(pending=info), NOW, 30)
    assert not again.changed and js.version() == 2
    moved = dict(info)
    moved[created[4].id] = PendingInfo(Reason.PRIORITY, 5, None)
    assert js.apply(Plan(pending=moved), NOW, 30).changed
    with store.read() as conn:
        stamped = conn.execute(sa.select(jobs.c.id).where(jobs.c.version == 3)).scalars().all()
    assert stamped == [created[4].id]
    last = js.get(created[4].id)
    assert last is not None and (last.reason, last.estimated_start) == (Reason.PRIORITY, None)
    # The locally recorded rows are not read back, yet the mirror still sees later changes.
    js.finish(created[0].id, JobState.CANCELLED, NOW)
    assert [j.id for j in js.snapshot(NOW, demo_topology(), POLICY).pending] == [
        j.id for j in created[1:]
    ]
    assert not js.apply(Plan(pending=moved), NOW, 30).changed


def test_preemption_is_marked_once(js: JobStore) -> None:
    a = run(js, js.submit([job()], NOW)[0], "node-a-gpu0")
    first = js.apply(Plan(preemptions=(Preemption(a.id, None, "booking begins"),)), NOW, 30)
    assert [(j.id, j.preempt_at, j.message) for j in first.preempted] == [
        (a.id, NOW, "booking begins")
    ]
    again = js.apply(Plan(preemptions=(Preemption(a.id, 7, "other"),)), NOW + 5, 30)
    assert again.preempted == [] and not again.changed
    assert js.overdue_preemptions(NOW + 29, 30) == []
    assert [j.id for j in js.overdue_preemptions(NOW + 30, 30)] == [a.id]


# ---------------------------------------------------------------------------------- endings


def test_finish_frees_claims_and_folds_usage(js: JobStore, store: Store) -> None:
    a = run(js, js.submit([job(gpu_count=2)], NOW)[0], "node-a-gpu0", "node-a-gpu1")
    ended = js.finish(a.id, JobState.COMPLETED, NOW + 100, exit_code=0, message="done")
    assert ended == js.get(a.id)
    assert (ended.state, ended.ended_at, ended.exit_code, ended.message) == (
        JobState.COMPLETED, NOW + 100, 0, "done",
    )  # fmt: skip
    with store.read() as conn:
        rows = conn.execute(sa.select(claims.c.end_s, claims.c.active)).all()
    assert rows == [(NOW + 100, False)] * 2
    js.snapshot(NOW + 100, demo_topology(), POLICY)
    [(tenant, usage, at)] = js.mirror.tenants()
    assert (tenant.id, usage, at) == ("default", 200.0, NOW + 100)
    with pytest.raises(Conflict) as err:
        js.finish(a.id, JobState.CANCELLED, NOW + 200)
    assert err.value.code == "job_finished"
    with pytest.raises(NotFound):
        js.finish(12345, JobState.CANCELLED, NOW)
    # The freed GPUs can be taken again at once.
    b = js.submit([job("bob")], NOW)[0]
    assert run(js, b, "node-a-gpu0", now=NOW + 100).state is JobState.RUNNING


def test_finish_never_extends_a_claim(js: JobStore, store: Store) -> None:
    a = run(js, js.submit([job(time_limit_s=60)], NOW)[0], "node-a-gpu0", end=NOW + 60)
    js.finish(a.id, JobState.COMPLETED, NOW + 600)
    with store.read() as conn:
        assert conn.execute(sa.select(claims.c.end_s, claims.c.active)).all() == [(NOW + 60, False)]


def test_requeue_a_preempted_batch_job(js: JobStore) -> None:
    a = run(js, js.submit([job()], NOW)[0], "node-a-gpu0")
    js.apply(Plan(preemptions=(Preemption(a.id, None, "make room"),)), NOW, 30)
    js.finish(a.id, JobState.PREEMPTED, NOW + 30)
    back = js.requeue(a.id, NOW + 31)
    assert back == js.get(a.id)
    assert (back.state, back.requeues, back.gpu_ids, back.preempt_at, back.started_at) == (
        JobState.PENDING, 1, (), None, None,
    )  # fmt: skip
    assert [j.id for j in js.snapshot(NOW + 31, demo_topology(), POLICY).pending] == [a.id]
    with pytest.raises(Conflict):
        js.requeue(a.id, NOW + 32)  # pending → pending is not a transition


def test_interactive_jobs_are_not_requeued(js: JobStore) -> None:
    a = run(js, js.submit([job(kind=JobKind.INTERACTIVE)], NOW)[0], "node-a-gpu0")
    js.finish(a.id, JobState.LOST, NOW + 5)
    with pytest.raises(Conflict):
        js.requeue(a.id, NOW + 6)


# ----------------------------------------------------------------------------------- leases


def test_heartbeat_and_expired_leases(js: JobStore) -> None:
    live, batch = js.submit(
        [job(kind=JobKind.INTERACTIVE, lease_expires_at=NOW + 30, pid=7, host="here"), job()],
        NOW,
    )
    assert js.expired_leases(NOW + 30) == []
    assert [j.id for j in js.expired_leases(NOW + 31)] == [live.id]
    version = js.version()
    renewed = js.heartbeat(live.id, NOW + 20, 30)
    assert renewed.lease_expires_at == NOW + 50 == js.get(live.id).lease_expires_at  # type: ignore[union-attr]
    assert js.version() == version  # a heartbeat bumps nothing
    assert js.expired_leases(NOW + 31) == []
    assert js.heartbeat(batch.id, NOW, 30).lease_expires_at is None
    assert [j.id for j in js.watched("here")] == [live.id] and js.watched("elsewhere") == []
    js.finish(live.id, JobState.CANCELLED, NOW + 40)
    assert js.heartbeat(live.id, NOW + 41, 30).lease_expires_at is None  # finished: unchanged
    assert js.expired_leases(NOW + 1000) == [] and js.watched("here") == []
    with pytest.raises(NotFound):
        js.heartbeat(777, NOW, 30)


def test_interactive_start_sets_the_lease(js: JobStore) -> None:
    a = js.submit([job(kind=JobKind.INTERACTIVE, lease_expires_at=NOW + 30)], NOW)[0]
    assert run(js, a, "node-a-gpu0", now=NOW + 20).lease_expires_at == NOW + 50


def test_zero_gpu_jobs_start_without_claims(js: JobStore, store: Store) -> None:
    a = js.submit([job(gpu_count=0)], NOW)[0]
    assert js.apply(Plan(starts=(Start(a.id, ("node-a",), (), OPEN_END),)), NOW, 30).started
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(claims)).scalar_one() == 0


def test_a_batch_start_on_no_node_is_skipped(js: JobStore) -> None:
    """A CPU-only batch job needs a node whose agent runs it; "running nowhere" never ends."""
    a = js.submit([job(gpu_count=0)], NOW)[0]
    b = js.submit([job(gpu_count=0, kind=JobKind.INTERACTIVE)], NOW)[0]  # its client runs it
    starts = (Start(a.id, (), (), OPEN_END), Start(b.id, (), (), OPEN_END))
    applied = js.apply(Plan(starts=starts), NOW, 30)
    assert applied.skipped == [a.id] and [j.id for j in applied.started] == [b.id]
    assert js.get(a.id).state is JobState.PENDING  # type: ignore[union-attr]


def test_version_is_bumped_once_per_write(js: JobStore) -> None:
    js.submit([job()], NOW)
    js.submit([job(array_index=i) for i in range(3)], NOW)
    assert js.version() == 2
