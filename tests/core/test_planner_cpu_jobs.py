"""Zero-GPU (CPU-only) jobs: they claim no GPU, but they run on a real node.

A batch job goes to its pinned node or its booking's node, else to the usable node with an
agent that runs the fewest jobs (ties by config order); with no such node it waits with a
truthful reason. An interactive job runs where its client runs: the node its host names, if
any.
"""

from __future__ import annotations

from dataclasses import replace

from planner_kit import NOW, booking, job, run, running, snap, topo

from procplan.core.jobs import JobKind, Reason, Tenant
from procplan.core.timeutil import HOUR


def cpu(job_id: int, **fields: object):  # type: ignore[no-untyped-def]
    """A pending CPU-only job (batch unless told otherwise)."""
    return job(job_id, gpu_count=0, **fields)


def nodes_of(result: object) -> dict[int, tuple[str, ...]]:
    return {s.job_id: s.node_ids for s in result.starts}  # type: ignore[attr-defined]


def test_a_pinned_cpu_job_runs_on_its_node_even_when_its_gpus_are_busy() -> None:
    busy = [running(90, ["n1-g0", "n1-g1"])]
    result = run(snap(topo(2, 2), [cpu(1, node_id="n1")], busy))
    assert nodes_of(result) == {1: ("n1",)}
    assert result.starts[0].gpu_ids == ()


def test_a_cpu_job_naming_a_booking_runs_on_the_booked_node() -> None:
    mine = booking(7, ["n1-g0"], NOW - HOUR, NOW + HOUR, user="alice")
    result = run(snap(topo(2, 2), [cpu(1, booking_id=7)], bookings=[mine]))
    assert nodes_of(result) == {1: ("n1",)}


def test_an_unpinned_cpu_job_goes_to_the_node_running_the_fewest_jobs() -> None:
    busy = [running(90, ["n0-g0"]), running(91, ["n0-g1"]), running(92, ["n1-g0"])]
    result = run(snap(topo(2, 2, 2), [cpu(1)], busy))
    assert nodes_of(result) == {1: ("n2",)}


def test_ties_go_by_config_order_and_starts_of_the_same_pass_count() -> None:
    result = run(snap(topo(2, 2, 2), [cpu(1), cpu(2), cpu(3), cpu(4)]))
    assert nodes_of(result) == {1: ("n0",), 2: ("n1",), 3: ("n2",), 4: ("n0",)}


def test_gpu_jobs_started_in_the_same_pass_count_as_load() -> None:
    result = run(snap(topo(2, 2), [job(1, gpu_count=2), cpu(2)]))
    assert result.starts[0].node_ids == ("n0",)  # best fit, config order
    assert nodes_of(result)[2] == ("n1",)


def test_cpu_jobs_go_only_to_nodes_whose_agent_runs_batch_jobs() -> None:
    state = replace(snap(topo(2, 2, 2), [cpu(1)]), batch_nodes=frozenset({"n2"}))
    assert nodes_of(run(state)) == {1: ("n2",)}


def test_cpu_jobs_skip_down_nodes() -> None:
    assert nodes_of(run(snap(topo(2, 2), [cpu(1)], down=["n0"]))) == {1: ("n1",)}


def test_a_cpu_job_with_no_agent_anywhere_waits_with_no_agent() -> None:
    state = replace(snap(topo(2, 2), [cpu(1)]), batch_nodes=frozenset())
    result = run(state)
    assert not result.starts
    assert result.pending[1].reason is Reason.NO_AGENT


def test_a_cpu_job_with_every_node_down_waits_with_node_down() -> None:
    result = run(snap(topo(2, 2), [cpu(1), cpu(2, node_id="n1")], down=["n0", "n1"]))
    assert not result.starts
    assert {i: p.reason for i, p in result.pending.items()} == {
        1: Reason.NODE_DOWN,
        2: Reason.NODE_DOWN,
    }


def test_a_pinned_cpu_job_waits_for_its_nodes_agent() -> None:
    state = replace(snap(topo(2, 2), [cpu(1, node_id="n0")]), batch_nodes=frozenset({"n1"}))
    result = run(state)
    assert not result.starts
    assert result.pending[1].reason is Reason.NO_AGENT


def test_a_multi_node_cpu_job_takes_distinct_least_loaded_nodes() -> None:
    busy = [running(90, ["n0-g0"])]
    result = run(snap(topo(2, 2, 2), [cpu(1, nodes=2)], busy))
    assert nodes_of(result) == {1: ("n1", "n2")}


def test_cpu_jobs_count_against_the_tenants_job_quota() -> None:
    tenant = Tenant("lab", max_jobs=1)
    busy = [running(90, ["n0-g0"], tenant="lab")]
    queue = [cpu(1, tenant="lab")]
    result = run(snap(topo(2), queue, busy, tenants=[tenant]))
    assert not result.starts
    assert result.pending[1].reason is Reason.QUOTA_JOBS
    # Once the running job is gone the quota frees up; a running CPU job holds it in turn.
    freed = run(snap(topo(2), queue, tenants=[tenant]))
    assert nodes_of(freed) == {1: ("n0",)}
    holder = replace(running(91, [], tenant="lab"), node_ids=("n0",), gpu_count=0)
    held = run(snap(topo(2), [cpu(2, tenant="lab")], [holder], tenants=[tenant]))
    assert held.pending[2].reason is Reason.QUOTA_JOBS


def test_an_interactive_cpu_job_runs_on_the_node_its_host_names() -> None:
    interactive = JobKind.INTERACTIVE
    queue = [
        cpu(1, kind=interactive, host="n1"),
        cpu(2, kind=interactive, host="n2.lab.example.org"),  # short name
        cpu(3, kind=interactive, host="laptop"),  # not a node: runs on none
        cpu(4, kind=interactive),
    ]
    result = run(snap(topo(2, 2, 2), queue))
    assert nodes_of(result) == {1: ("n1",), 2: ("n2",), 3: (), 4: ()}


def test_an_interactive_cpu_job_needs_no_agent_and_skips_a_down_host_node() -> None:
    queue = [cpu(1, kind=JobKind.INTERACTIVE, host="n0")]
    state = replace(snap(topo(2, 2), queue, down=["n0"]), batch_nodes=frozenset())
    assert nodes_of(run(state)) == {1: ()}
