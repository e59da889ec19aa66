"""The JobMirror: every process's in-memory queue follows the commits of all of them, reads
only what changed, and skips what its own apply just wrote."""

from __future__ import annotations

import random

from jobs_kit import HOUR, NOW, POLICY, job, start

from procplan.core.jobs import (
    NO_BLOCKERS,
    Blockers,
    JobState,
    PendingInfo,
    Plan,
    Preemption,
    Reason,
    Start,
)
from procplan.core.topology import demo_topology
from procplan.store.engine import Store, make_engine
from procplan.store.jobs_repo import JobStore


def test_mirror_syncs_across_two_stores_on_one_file(sqlite_url: str, js: JobStore) -> None:
    other_store = Store(make_engine(sqlite_url))
    other = JobStore(other_store)
    try:
        a, b = js.submit([job(), job("bob")], NOW)
        assert [j.id for j in other.snapshot(NOW, demo_topology(), POLICY).pending] == [a.id, b.id]
        result = other.apply(
            Plan(
                starts=(start(a, "node-a-gpu0"),),
                pending={b.id: PendingInfo(Reason.RESOURCES, 1, NOW + 60)},
            ),
            NOW,
            30,
        )
        assert result.changed and [j.id for j in result.started] == [a.id]
        s = js.snapshot(NOW, demo_topology(), POLICY)
        assert [j.id for j in s.running] == [a.id] and [j.id for j in s.pending] == [b.id]
        got = js.get(b.id)
        assert got is not None and (got.reason, got.estimated_start) == (Reason.RESOURCES, NOW + 60)
        assert got.queue_position == 1
        js.finish(a.id, JobState.COMPLETED, NOW + 10)
        js.submit([job("cy")], NOW)
        s2 = other.snapshot(NOW + 10, demo_topology(), POLICY)
        assert s2.running == () and len(s2.pending) == 2
    finally:
        other_store.dispose()


def test_snapshot_reuses_views_when_nothing_changed(js: JobStore) -> None:
    js.submit([job() for _ in range(3)], NOW)
    first = js.snapshot(NOW, demo_topology(), POLICY)
    second = js.snapshot(NOW + 1, demo_topology(), POLICY)
    assert first.pending is second.pending


def _queue_state(js: JobStore, now: int) -> tuple[object, ...]:
    s = js.snapshot(now, demo_topology(), POLICY)
    return (
        [(j.id, j.state, j.gpu_ids, j.preempt_at) for j in s.pending],
        [(j.id, j.state, j.gpu_ids, j.preempt_at) for j in s.running],
        dict(s.usage),
    )


def test_mirrors_agree_with_a_cold_read_through_random_writes(
    sqlite_url: str, js: JobStore
) -> None:
    """Two stores on one file write in turn; after every step each one's mirror equals what a
    fresh store reads, and its recorded pending infos equal the rows."""
    rng = random.Random(7)
    other_store = Store(make_engine(sqlite_url))
    stores = [js, JobStore(other_store)]
    gpus = [f"node-b-gpu{i}" for i in range(8)]
    try:
        for step in range(120):
            now = NOW + step
            actor = stores[rng.randrange(2)]
            pending, running = actor.active()
            roll = rng.random()
            if roll < 0.3 or not (pending or running):
                actor.submit([job(f"u{rng.randrange(3)}") for _ in range(rng.randrange(1, 4))], now)
            elif roll < 0.7:
                held = {g for j in running for g in j.gpu_ids}
                free = [g for g in gpus if g not in held]
                starts = tuple(
                    Start(j.id, ("node-b",), (g,), now + 5)
                    for j, g in zip(pending[:2], free, strict=False)
                )
                info = {
                    j.id: PendingInfo(
                        rng.choice([Reason.PRIORITY, Reason.RESOURCES]),
                        k + 1,
                        waits_for=rng.choice([NO_BLOCKERS, Blockers(jobs=(j.id - 1,))]),
                    )
                    for k, j in enumerate(pending[2:])
                }
                preempt = tuple(
                    Preemption(j.id, None, "x") for j in running[:1] if rng.random() < 0.3
                )
                actor.apply(Plan(starts=starts, preemptions=preempt, pending=info), now, 30)
            elif running and roll < 0.85:
                victim = rng.choice(running)
                ended = actor.finish(
                    victim.id, rng.choice([JobState.PREEMPTED, JobState.COMPLETED]), now
                )
                if ended.state is JobState.PREEMPTED:
                    actor.requeue(victim.id, now)
            elif pending:
                actor.finish(rng.choice(pending).id, JobState.CANCELLED, now)
            cold = JobStore(js.store)
            expected = _queue_state(cold, now)
            for each in stores:
                assert _queue_state(each, now) == expected, step
                for j in each.active()[0]:
                    row = cold.get(j.id)
                    assert row is not None
                    info = (row.reason, row.estimated_start, row.queue_position, row.waits_for)
                    assert each.mirror.pending_info(j.id) == info, (step, j.id)
    finally:
        other_store.dispose()


def test_deep_position_moves_wait_for_a_full_refresh(js: JobStore) -> None:
    """Positions deep in the queue are rewritten only on a refresh; the head, reasons and
    estimates always are."""
    queued = js.submit([job() for _ in range(150)], NOW)
    first = {j.id: PendingInfo(Reason.RESOURCES, i + 1) for i, j in enumerate(queued)}
    assert js.apply(Plan(pending=first), NOW, 30).changed
    moved = {j.id: PendingInfo(Reason.RESOURCES, i) for i, j in enumerate(queued) if i}
    lazy = js.mirror.changed_pending(moved, all_positions=False)
    assert set(lazy) == {j.id for j in queued[1:101]}  # now at 1..100 (were at 2..101)
    assert len(js.mirror.changed_pending(moved, all_positions=True)) == 149

    deep = queued[140]
    moved[deep.id] = PendingInfo(Reason.BOOKED, 139, NOW + HOUR)  # its reason changed
    assert deep.id in js.mirror.changed_pending(moved, all_positions=False)
    js.apply(Plan(pending=moved), NOW, 30, all_positions=False)
    stored = js.get(deep.id)
    assert stored is not None and stored.reason is Reason.BOOKED
