"""Property: the top job's estimated start is exactly the earliest instant at which a naive
search finds room for it (holders gone, no foreign booking in its claim), and it starts now
exactly when that instant is now. Exercises the estimate search's node order, its pruning
and the per-GPU shortcuts against brute force; and the "could it start now" summary against
the placement search it stands in for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from planner_kit import NOW, booking, job, running, snap, topo

from procplan.core.availability import Cluster, Want
from procplan.core.jobs import Job, Policy, Reason
from procplan.core.model import Booking, Topology
from procplan.core.nowfit import now_fit
from procplan.core.placement import ShapeBook, place_now
from procplan.core.planner import plan
from procplan.core.timeutil import MINUTE

STEP = 10 * MINUTE
POLICY = Policy(weight_age=0.0, weight_fairshare=0.0, preemption=False)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Topology, list[Job], list[Booking], Job]:
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    topology = topo(*sizes)
    gpus = [g.id for n in topology.nodes for g in n.gpus]
    held = draw(st.lists(st.sampled_from(gpus), unique=True, max_size=len(gpus)))
    holders = [
        running(100 + i, [g], started_at=NOW - STEP, time_limit_s=STEP * draw(st.integers(2, 8)))
        for i, g in enumerate(held)
    ]
    bookings: list[Booking] = []
    for i, g in enumerate(gpus):
        at = NOW + STEP * draw(st.integers(-2, 3))
        for k in range(draw(st.integers(0, 2))):
            end = at + STEP * draw(st.integers(1, 4))
            user = draw(st.sampled_from(["alice", "bob"]))
            bookings.append(booking(1000 + 10 * i + k, [g], at, end, user=user))
            at = end + STEP * draw(st.integers(0, 3))
    count = draw(st.sampled_from([1, 1, 2, 2, 4]))
    nodes = draw(st.sampled_from([1, 1, 2])) if count % 2 == 0 else 1
    limit = draw(st.sampled_from([None, STEP, 3 * STEP, 6 * STEP]))
    wanted = job(1, "alice", gpu_count=count, nodes=nodes, time_limit_s=limit)
    return topology, holders, bookings, wanted


def room_at(
    topology: Topology, holders: list[Job], bookings: list[Booking], j: Job, t: int
) -> bool:
    end = t + 1 if j.time_limit_s is None else t + j.time_limit_s
    busy = {g for h in holders for g in h.gpu_ids if h.started_at + h.time_limit_s > t}  # type: ignore[operator]
    per, fitting = j.gpu_count // j.nodes, 0
    for n in topology.nodes:
        free = [
            g.id
            for g in n.gpus
            if g.id not in busy
            and not any(
                g.id in b.gpu_ids and b.user != j.user and b.start < end and b.end > t
                for b in bookings
            )
        ]
        fitting += len(free) >= per
    return fitting >= j.nodes


def brute_earliest(
    topology: Topology, holders: list[Job], bookings: list[Booking], j: Job
) -> int | None:
    candidates = {NOW} | {h.started_at + h.time_limit_s for h in holders}  # type: ignore[operator]
    candidates |= {b.end for b in bookings if b.end > NOW}
    for t in sorted(c for c in candidates if c >= NOW):
        if room_at(topology, holders, bookings, j, t):
            return t
    return None


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_top_job_estimate_is_the_earliest_instant_with_room(
    world: tuple[Topology, list[Job], list[Booking], Job],
) -> None:
    topology, holders, bookings, wanted = world
    result = plan(snap(topology, [wanted], holders, bookings), NOW, POLICY)
    expected = brute_earliest(topology, holders, bookings, wanted)
    if expected == NOW:
        assert [s.job_id for s in result.starts] == [1]
        return
    assert not result.starts
    info = result.pending[1]
    assert info.estimated_start == expected
    if expected is not None:
        assert info.reason in {Reason.RESOURCES, Reason.BOOKED}


@settings(max_examples=150, deadline=None)
@given(worlds(), st.lists(st.tuples(st.integers(0, 11), st.integers(0, 6), st.integers(1, 6))))
def test_now_fit_summary_agrees_with_the_placement_search(
    world: tuple[Topology, list[Job], list[Booking], Job],
    reservations: list[tuple[int, int, int]],
) -> None:
    """The per-shape summary that lets most jobs skip the search must say "fits now" exactly
    when the search finds a placement (with bookings and reservations in the way)."""
    topology, holders, bookings, wanted = world
    state = snap(topology, [wanted], holders, bookings)
    cluster = Cluster(topology, NOW, {}, ())
    cluster.add_bookings(bookings)
    for h in holders:
        cluster.hold([cluster.index[g] for g in h.gpu_ids], h.started_at + h.time_limit_s)  # type: ignore[operator]
    cluster.index_free()
    taken: set[int] = set()
    for g, start, length in reservations:  # disjoint per GPU, as the planner makes them
        g %= len(cluster.gpu_ids)
        if g not in taken:
            taken.add(g)
            cluster.reserve([g], NOW + start * STEP, NOW + (start + length) * STEP)
    shape = ShapeBook(cluster, state.bookings).get(wanted)
    if shape.reason is not None:
        return
    for user in ("alice", "bob"):
        for length in (None, STEP, 4 * STEP):
            want = Want(user, None, length)
            fit = now_fit(cluster, shape, Want(user, None, None))
            assert fit.fits(length) == (place_now(cluster, shape, want) is not None)
