"""Placement: best fit, kind, memory, pinned node, node state, foreign GPUs, bookings (own and
foreign), open-ended jobs and the farthest booking, gangs, zero-GPU jobs."""

from __future__ import annotations

from dataclasses import replace

import pytest
from planner_kit import NOW, POLICY, booking, job, node, run, running, snap, started, topo

from procplan.core.jobs import OPEN_END, JobKind, NodeState, Reason
from procplan.core.model import BookingStatus, Gpu, Node, Topology
from procplan.core.timeutil import HOUR


def test_best_fit_prefers_the_node_left_fullest() -> None:
    # n0: 8 free, n1: 3 free (5 busy), n2: 2 free (6 busy). A 2-GPU job fills n2 exactly.
    busy = [
        running(90, [f"n1-g{i}" for i in range(5)]),
        running(91, [f"n2-g{i}" for i in range(6)]),
    ]
    result = run(snap(topo(8, 8, 8), [job(1, gpu_count=2)], busy))
    assert started(result) == {1: ("n2-g6", "n2-g7")}


def test_best_fit_then_config_order_then_pci_order() -> None:
    result = run(snap(topo(4, 2, 2), [job(1, gpu_count=2)]))
    assert result.starts[0].node_ids == ("n1",)
    assert result.starts[0].gpu_ids == ("n1-g0", "n1-g1")


def test_gpus_go_in_pci_index_order_not_declaration_order() -> None:
    gpus = (Gpu("b", "A100", index=1), Gpu("a", "A100", index=0), Gpu("c", "A100", index=2))
    result = run(snap(Topology((Node("x", "x", gpus),)), [job(1, gpu_count=2)]))
    assert result.starts[0].gpu_ids == ("a", "b")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"gpu_kind": "h100"}, ("h0-g0",)),  # case-insensitive
        ({"gpu_kind": "A100"}, ("a0-g0",)),
        ({"gpu_memory_mb": 60_000}, ("h0-g0",)),  # the A100s have 40 GB
        ({"gpu_memory_mb": 40_000}, ("a0-g0",)),  # best fit among both; config order
        ({"node_id": "h0"}, ("h0-g0",)),
    ],
)
def test_kind_memory_and_pinned_node(fields: dict[str, object], expected: tuple[str, ...]) -> None:
    topology = Topology(
        (node("a0", 2, "A100", 40_000), node("h0", 2, "H100", 80_000), node("m0", 2, "A100", None))
    )
    result = run(snap(topology, [job(1, **fields)]))
    assert started(result) == {1: expected}


def test_gpus_of_unknown_memory_satisfy_a_memory_request() -> None:
    """A topology that does not state memory does not enforce it (as submission does)."""
    topology = Topology((node("m0", 2, "A100", None),))
    result = run(snap(topology, [job(1, gpu_memory_mb=16_000)]))
    assert [s.job_id for s in result.starts] == [1]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"gpu_count": 9}, Reason.UNSATISFIABLE),  # more than any node has
        ({"gpu_kind": "V100"}, Reason.UNSATISFIABLE),
        ({"gpu_memory_mb": 1_000_000}, Reason.UNSATISFIABLE),
        ({"node_id": "nowhere"}, Reason.UNSATISFIABLE),
        ({"gpu_count": 4, "nodes": 3}, Reason.UNSATISFIABLE),  # not a multiple
        ({"gpu_count": 6, "nodes": 3}, Reason.UNSATISFIABLE),  # only two nodes
        ({"node_id": "n1"}, Reason.NODE_DOWN),
        ({"gpu_count": 8, "nodes": 2}, Reason.NODE_DOWN),  # needs both nodes, n1 is down
    ],
)
def test_jobs_that_cannot_run_anywhere(fields: dict[str, object], reason: Reason) -> None:
    result = run(snap(topo(8, 4), [job(1, **fields)], down=["n1"]))
    assert not result.starts
    assert result.pending[1] == result.pending[1].__class__(reason, 1, None)


def test_down_and_draining_nodes_get_no_new_jobs() -> None:
    state = snap(topo(2, 2, 2), [job(i) for i in range(1, 4)])
    states = {"n0": NodeState(up=False), "n1": NodeState(draining=True)}
    result = run(replace(state, node_states=states))
    assert {s.node_ids for s in result.starts} == {("n2",)}
    assert result.pending[3].reason is Reason.RESOURCES


def test_running_jobs_on_a_down_node_keep_their_gpus() -> None:
    busy = [running(90, ["n0-g0"])]
    result = run(snap(topo(2, 2), [job(1, gpu_count=2)], busy, down=["n0"]))
    assert started(result) == {1: ("n1-g0", "n1-g1")}
    assert not result.preemptions


def test_foreign_gpus_are_not_used_unless_policy_allows() -> None:
    state = snap(topo(2), [job(1, gpu_count=2)], foreign=["n0-g0"])
    assert run(state).pending[1].reason is Reason.RESOURCES
    allowed = replace(POLICY, foreign_gpus_blocked=False)
    assert started(run(state, policy=allowed)) == {1: ("n0-g0", "n0-g1")}


# -- bookings -----------------------------------------------------------------------------


def test_a_foreign_booking_in_the_claim_window_keeps_the_job_off_those_gpus() -> None:
    # n0-g0 is booked by carol from NOW + 30 min: alice's 1 h job must go to n0-g1.
    state = snap(topo(2), [job(1)], bookings=[booking(7, ["n0-g0"], NOW + 1800, NOW + 3 * HOUR)])
    assert started(run(state)) == {1: ("n0-g1",)}


def test_a_short_job_fits_before_a_foreign_booking() -> None:
    state = snap(
        topo(1),
        [job(1, time_limit_s=1800)],
        bookings=[booking(7, ["n0-g0"], NOW + 1800, NOW + 3 * HOUR)],
    )
    assert started(run(state)) == {1: ("n0-g0",)}


def test_free_gpus_booked_by_others_give_reason_booked_and_an_estimate() -> None:
    state = snap(topo(1), [job(1)], bookings=[booking(7, ["n0-g0"], NOW - HOUR, NOW + HOUR)])
    result = run(state)
    assert not result.starts
    assert result.pending[1].reason is Reason.BOOKED
    assert result.pending[1].estimated_start == NOW + HOUR


def test_the_owner_of_a_booking_runs_on_it() -> None:
    state = snap(
        topo(1),
        [job(1, user="carol")],
        bookings=[booking(7, ["n0-g0"], NOW - HOUR, NOW + HOUR, user="carol")],
    )
    assert started(run(state)) == {1: ("n0-g0",)}


def test_a_job_naming_its_booking_goes_only_on_the_booked_gpus() -> None:
    bookings = [booking(7, ["n1-g2", "n1-g3"], NOW - HOUR, NOW + HOUR, user="alice")]
    state = snap(topo(4, 4), [job(1, gpu_count=2, booking_id=7)], bookings=bookings)
    assert started(run(state)) == {1: ("n1-g2", "n1-g3")}


def test_a_job_naming_its_booking_waits_for_the_gpus_of_that_booking() -> None:
    bookings = [booking(7, ["n1-g2", "n1-g3"], NOW - HOUR, NOW + 2 * HOUR, user="alice")]
    hog = running(50, ["n1-g3"], user="alice", started_at=NOW - HOUR, time_limit_s=90 * 60)
    state = snap(topo(4, 4), [job(1, gpu_count=2, booking_id=7)], [hog], bookings)
    result = run(state)
    assert not result.starts
    assert result.pending[1].reason is Reason.RESOURCES
    assert result.pending[1].estimated_start == NOW + 30 * 60


@pytest.mark.parametrize(
    ("start", "end", "estimate"),
    [
        (NOW + HOUR, NOW + 2 * HOUR, NOW + HOUR),  # not begun yet: starts with it
        (NOW - 2 * HOUR, NOW, None),  # ended
    ],
)
def test_a_job_naming_an_inactive_booking_waits(start: int, end: int, estimate: int | None) -> None:
    bookings = [booking(7, ["n0-g0"], start, end, user="alice")]
    result = run(snap(topo(2), [job(1, booking_id=7)], bookings=bookings))
    assert result.pending[1].reason is Reason.BOOKING_INACTIVE
    assert result.pending[1].estimated_start == estimate


def test_a_job_naming_an_unknown_booking_waits() -> None:
    result = run(snap(topo(2), [job(1, booking_id=99)]))
    assert result.pending[1].reason is Reason.BOOKING_INACTIVE
    assert result.pending[1].estimated_start is None


def test_cancelled_bookings_are_ignored() -> None:
    cancelled = booking(7, ["n0-g0"], NOW - HOUR, NOW + HOUR)._replace(
        status=BookingStatus.CANCELLED
    )
    assert started(run(snap(topo(1), [job(1)], bookings=[cancelled]))) == {1: ("n0-g0",)}


# -- open-ended jobs ----------------------------------------------------------------------


def test_open_ended_job_prefers_the_farthest_next_foreign_booking() -> None:
    bookings = [
        booking(1, ["n0-g0", "n0-g1"], NOW + HOUR, NOW + 2 * HOUR),
        booking(2, ["n1-g0"], NOW + 5 * HOUR, NOW + 6 * HOUR),
        booking(3, ["n2-g1"], NOW + 3 * HOUR, NOW + 4 * HOUR),
    ]
    state = snap(topo(2, 2, 2), [job(1, time_limit_s=None)], bookings=bookings)
    result = run(state)
    # n1-g1 and n2-g0 are never booked; n1 comes first in config order.
    assert started(result) == {1: ("n1-g1",)}
    assert result.starts[0].claim_end == OPEN_END


def test_open_ended_job_takes_the_latest_booked_gpus_when_all_are_booked() -> None:
    bookings = [
        booking(1, ["n0-g0"], NOW + HOUR, NOW + 2 * HOUR),
        booking(2, ["n0-g1"], NOW + 5 * HOUR, NOW + 6 * HOUR),
        booking(3, ["n0-g2"], NOW + 3 * HOUR, NOW + 4 * HOUR),
    ]
    state = snap(topo(3), [job(1, gpu_count=2, time_limit_s=None)], bookings=bookings)
    assert started(run(state)) == {1: ("n0-g1", "n0-g2")}


def test_open_ended_job_may_start_under_a_future_foreign_booking_but_not_an_active_one() -> None:
    bookings = [
        booking(1, ["n0-g0"], NOW - HOUR, NOW + HOUR),  # active: excluded
        booking(2, ["n0-g1"], NOW + 600, NOW + HOUR),  # future: allowed (preempted then)
    ]
    state = snap(topo(2), [job(1, time_limit_s=None)], bookings=bookings)
    assert started(run(state)) == {1: ("n0-g1",)}
    # A job with a time limit cannot use either GPU.
    limited = snap(topo(2), [job(1)], bookings=bookings)
    assert run(limited).pending[1].reason is Reason.BOOKED


# -- gangs and zero-GPU jobs --------------------------------------------------------------


def test_multi_node_gang_gets_its_share_on_distinct_nodes_or_nothing() -> None:
    busy = [running(90, ["n0-g0", "n0-g1", "n0-g2"])]
    state = snap(topo(4, 4, 2), [job(1, gpu_count=4, nodes=2)], busy)
    result = run(state)
    # Per node 2 GPUs: n0 has 1 free (no), n1 4, n2 2: best fit takes n2 and n1.
    assert result.starts[0].node_ids == ("n1", "n2")
    assert result.starts[0].gpu_ids == ("n1-g0", "n1-g1", "n2-g0", "n2-g1")


def test_multi_node_gang_waits_when_one_node_is_short() -> None:
    busy = [running(90, ["n1-g0", "n1-g1", "n1-g2"], time_limit_s=2 * HOUR)]
    result = run(snap(topo(4, 4), [job(1, gpu_count=4, nodes=2)], busy))
    assert not result.starts
    assert result.pending[1].reason is Reason.RESOURCES
    assert result.pending[1].estimated_start == NOW + HOUR


def test_zero_gpu_jobs_start_at_once_on_a_node() -> None:
    busy = [running(90, ["n0-g0"])]
    state = snap(topo(1), [job(1, gpu_count=0), job(2, gpu_count=0, node_id="n0")], busy)
    result = run(state)
    by_id = {s.job_id: s for s in result.starts}
    assert by_id[1].gpu_ids == () and by_id[1].node_ids == ("n0",)  # see test_planner_cpu_jobs
    assert by_id[2].gpu_ids == () and by_id[2].node_ids == ("n0",)


def test_running_jobs_gpus_are_never_handed_out_again() -> None:
    overdue = running(90, ["n0-g0"], started_at=NOW - 10 * HOUR, time_limit_s=HOUR)
    result = run(snap(topo(1), [job(1)], [overdue]))
    assert not result.starts
    assert result.pending[1].estimated_start == NOW + 1  # as soon as it is gone


def test_batch_jobs_go_only_to_nodes_whose_agent_runs_them() -> None:
    queue = [job(1, gpu_count=2), job(2, gpu_count=2, kind=JobKind.INTERACTIVE), job(3)]
    state = replace(snap(topo(2, 2), queue), batch_nodes=frozenset({"n1"}))
    result = run(state)
    assert started(result) == {1: ("n1-g0", "n1-g1"), 2: ("n0-g0", "n0-g1")}
    assert result.pending[3].reason is Reason.RESOURCES  # n1 is full; n0 has no agent
    pinned = run(replace(snap(topo(2, 2), [job(4, node_id="n0")]), batch_nodes=frozenset()))
    assert pinned.pending[4].reason is Reason.NO_AGENT
