"""The ledger rules exist once: a differential test of everyone who applies them.

Random ledgers are built one ask at a time — bookings (explicit GPU or by count, of three
users, past, present and future) and job starts (time-limited or open-ended, some naming a
booking) — on a real SQLite store. Before each ask, the pure rule function
(``core.ledger.judge``) is asked what must happen on each GPU, given the claims a plain list
kept by this test says are active. Then:

- the store's write path must agree: a booking is accepted, or refused with the rule's error
  code; an explicit job start passes or fails the store's re-check in the write transaction
  (``job_apply``), and a booking reports exactly the jobs the rules say it will preempt;
- the planner's view (``core.availability.Cluster``, built from the store's own snapshot) must
  say the same GPUs are usable for a job now;
- the planner's placement search (``core.planner.plan``) starts a queued job exactly when some
  GPU may take it, and only on such a GPU.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobs_kit import HOUR, NOW

from procplan.core.availability import Cluster
from procplan.core.bookings import BookingLimits
from procplan.core.errors import Conflict
from procplan.core.jobs import OPEN_END, Job, JobState, Plan, Policy, Start
from procplan.core.ledger import Ask, Hold, Holder, Want, judge
from procplan.core.model import BookingRequest, Gpu, Node, Topology
from procplan.core.planner import plan
from procplan.service.bookings import BookingService
from procplan.store.engine import Store, make_engine
from procplan.store.jobs_repo import JobStore
from procplan.store.migrate import upgrade
from procplan.testing import FakeClock

USERS = ("ada", "bob", "cy")
GPUS = ("n0-g0", "n0-g1")
TOPOLOGY = Topology((Node("n0", "n0", tuple(Gpu(g, index=i) for i, g in enumerate(GPUS))),))
POLICY = Policy(weight_age=0.0, weight_fairshare=0.0, min_runtime_s=0)


@dataclass(frozen=True)
class BookOp:
    user: str
    gpu: int | None  # None: by count
    count: int
    start_h: int  # hours from NOW
    hours: int


@dataclass(frozen=True)
class JobOp:
    user: str
    gpu: int | None  # None: queued, the planner places it
    hours: int | None  # None: open-ended
    booking: int | None  # index into the bookings made so far


_book = st.builds(
    BookOp,
    st.sampled_from(USERS),
    st.one_of(st.none(), st.integers(0, len(GPUS) - 1)),
    st.integers(1, len(GPUS)),
    st.integers(-1, 3),
    st.integers(1, 2),
)
_job = st.builds(
    JobOp,
    st.sampled_from(USERS),
    st.one_of(st.none(), st.integers(0, len(GPUS) - 1)),
    st.one_of(st.none(), st.integers(1, 3)),
    st.one_of(st.none(), st.integers(0, 3)),
)
_ops = st.lists(st.one_of(_book, _job), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database file, copied for each example (a migration per example is slow)."""
    path = tmp_path_factory.mktemp("ledger") / "template.db"
    store = Store(make_engine(f"sqlite:///{path}"))
    upgrade(store)
    store.dispose()
    return path


class World:
    """The store under test, and this test's own list of active claims."""

    def __init__(self, path: Path) -> None:
        self.store = Store(make_engine(f"sqlite:///{path}"))
        self.clock = FakeClock(NOW)
        self.bookings = BookingService(self.store, self.clock, BookingLimits())
        self.bookings.replace_topology(TOPOLOGY)
        self.jobs = JobStore(self.store, self.bookings.bookings.mirror)
        self.holds: list[Hold] = []
        self.booking_ids: list[int] = []

    def on(self, gpu_id: str) -> list[Hold]:
        return [h for h in self.holds if h.gpu_id == gpu_id]

    def verdicts(self, ask: Ask) -> dict[str, bool]:
        return {g: judge(ask, self.on(g)).ok for g in GPUS}


@pytest.fixture
def worlds(template: Path, tmp_path: Path) -> Iterator[list[World]]:
    made: list[World] = []
    yield made
    for world in made:
        world.store.dispose()


def _new_world(template: Path, tmp_path: Path, made: list[World]) -> World:
    path = tmp_path / f"w{len(made)}.db"
    shutil.copyfile(template, path)
    world = World(path)
    made.append(world)
    return world


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_ops)
def test_every_reader_of_the_ledger_agrees_with_the_rules(
    ops: list[BookOp | JobOp], template: Path, tmp_path: Path, worlds: list[World]
) -> None:
    world = _new_world(template, tmp_path, worlds)
    for op in ops:
        if isinstance(op, BookOp):
            _book_one(world, op)
        else:
            _run_one(world, op)


def _book_one(world: World, op: BookOp) -> None:
    start, end = NOW + op.start_h * HOUR, NOW + (op.start_h + op.hours) * HOUR
    ask = Ask.booking(op.user, start, end)
    verdicts = {g: judge(ask, world.on(g)) for g in GPUS}
    gpu_ids = (GPUS[op.gpu],) if op.gpu is not None else None
    count = None if gpu_ids else op.count
    req = BookingRequest("n0", start, end, op.user, "XX", gpu_ids=gpu_ids, gpu_count=count)
    try:
        booking, preempted = world.bookings.book(req, whole_hours=False)
    except Conflict as refused:
        if gpu_ids:
            refusal = verdicts[gpu_ids[0]].refusal
            assert refusal is not None, (op, world.holds)
            assert refused.code == refusal.value
        else:
            assert refused.code == "no_free_gpus"
            assert sum(v.ok for v in verdicts.values()) < op.count, (op, world.holds)
        return
    if gpu_ids:
        assert verdicts[gpu_ids[0]].ok, (op, world.holds)
    else:
        assert len(booking.gpu_ids) == op.count
    assert all(verdicts[g].ok for g in booking.gpu_ids), (op, booking, world.holds)
    expected = sorted({h.holder_id for g in booking.gpu_ids for h in verdicts[g].preempts})
    assert [p.job_id for p in preempted] == expected
    world.booking_ids.append(booking.id)
    world.holds += [
        Hold(Holder.BOOKING, booking.id, op.user, g, start, end) for g in booking.gpu_ids
    ]


def _run_one(world: World, op: JobOp) -> None:
    named = op.booking is not None and op.booking < len(world.booking_ids)
    booking_id = world.booking_ids[op.booking] if named and op.booking is not None else None
    length = None if op.hours is None else op.hours * HOUR
    ask = Ask.job(op.user, NOW, length, booking_id)
    verdicts = world.verdicts(ask)
    _planner_view_agrees(world, Want(op.user, booking_id, length), verdicts)
    [queued] = world.jobs.submit(
        [Job(id=0, user=op.user, gpu_count=1, time_limit_s=length, booking_id=booking_id)], NOW
    )
    if op.gpu is None and booking_id is None:
        gpu_id = _placement_agrees(world, queued, verdicts)
    else:
        gpu_id = GPUS[op.gpu if op.gpu is not None else 0]
    claim_end = ask.end
    if gpu_id is not None:
        result = world.jobs.apply(
            Plan(starts=(Start(queued.id, ("n0",), (gpu_id,), claim_end),)), NOW, 30
        )
        assert bool(result.started) == verdicts[gpu_id], (op, gpu_id, world.holds)
        if result.started:
            world.holds.append(Hold(Holder.JOB, queued.id, op.user, gpu_id, NOW, claim_end))
            return
    world.jobs.finish(queued.id, JobState.CANCELLED, NOW)


def _planner_view_agrees(world: World, want: Want, verdicts: dict[str, bool]) -> None:
    """The cycle's view, built from the store's snapshot, finds the same GPUs usable now."""
    snapshot = world.jobs.snapshot(NOW, TOPOLOGY, POLICY)
    cluster = Cluster(TOPOLOGY, NOW, {}, ())
    cluster.add_bookings(snapshot.bookings)
    for job in snapshot.running:
        end = OPEN_END if job.time_limit_s is None else NOW + job.time_limit_s
        cluster.hold([cluster.index[g] for g in job.gpu_ids], end)
    usable = cluster.usable_at(range(len(GPUS)), NOW, want)
    assert {GPUS[g] for g in usable} == {g for g, ok in verdicts.items() if ok}
    for g, gpu_id in enumerate(GPUS):
        assert (cluster.gpu_earliest(g, NOW, want) == NOW) == verdicts[gpu_id]


def _placement_agrees(world: World, queued: Job, verdicts: dict[str, bool]) -> str | None:
    """The planner starts the queued job now exactly when some GPU may take it, on such a
    GPU; returns that GPU (``None``: it waits)."""
    snapshot = world.jobs.snapshot(NOW, TOPOLOGY, POLICY)
    decided = plan(snapshot, NOW, POLICY)
    starts = [s for s in decided.starts if s.job_id == queued.id]
    assert bool(starts) == any(verdicts.values()), (queued, world.holds, decided)
    if not starts:
        return None
    [gpu_id] = starts[0].gpu_ids
    assert verdicts[gpu_id]
    return gpu_id
