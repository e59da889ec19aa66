"""Gang jobs stay on one GPU model unless they ask for ``gpu_kind="any"`` (issue #19)."""

from __future__ import annotations

import pytest
from planner_kit import NOW, job, node, run, running, snap, started

from procplan.core.availability import Cluster
from procplan.core.errors import InvalidRequest
from procplan.core.job_validation import JobLimits, validate_job_request
from procplan.core.jobs import JobRequest, Reason
from procplan.core.model import Gpu, Node, Topology
from procplan.core.placement import ShapeBook, options
from procplan.core.timeutil import HOUR


def mixed() -> Topology:
    """``a0`` (A100) and ``h0``, ``h1`` (H100) with 4 GPUs each, A100 first in config order."""
    return Topology((node("a0", 4, "A100"), node("h0", 4, "H100"), node("h1", 4, "H100")))


def kinds_of(gpus: tuple[str, ...]) -> set[str]:
    return {g.split("-")[0][0] for g in gpus}


def test_a_gang_without_a_kind_lands_on_one_model() -> None:
    # Best fit alone would take a0 (busiest) and one H100 node: a mixed gang.
    busy = [running(9, ["a0-g0", "a0-g1"]), running(8, ["h0-g0"])]
    result = run(snap(mixed(), [job(1, gpu_count=4, nodes=2)], busy))
    assert started(result)[1] == ("h0-g1", "h0-g2", "h1-g0", "h1-g1")
    assert result.starts[0].node_ids == ("h0", "h1")


def test_with_any_the_gang_may_mix_models() -> None:
    busy = [running(9, ["a0-g0", "a0-g1"]), running(8, ["h0-g0"])]
    result = run(snap(mixed(), [job(1, gpu_count=4, nodes=2, gpu_kind="any")], busy))
    gpus = started(result)[1]
    assert kinds_of(gpus) == {"a", "h"}  # best fit: the two fullest nodes, whatever model
    assert result.starts[0].node_ids == ("a0", "h0")


def test_a_gang_waits_for_one_model_and_gets_the_earliest_estimate() -> None:
    # Only one node per model is free now: no homogeneous pair until h1 frees at NOW + 1 h.
    busy = [
        running(9, [f"h1-g{i}" for i in range(4)], started_at=NOW - HOUR, time_limit_s=2 * HOUR)
    ]
    topology = Topology((node("a0", 4, "A100"), node("h0", 4, "H100"), node("h1", 4, "H100")))
    result = run(snap(topology, [job(1, gpu_count=8, nodes=2)], busy))
    assert not result.starts
    assert result.pending[1].estimated_start == NOW + HOUR
    mixing = run(snap(topology, [job(1, gpu_count=8, nodes=2, gpu_kind="any")], busy))
    assert set(mixing.starts[0].node_ids) == {"a0", "h0"}


def test_a_gang_no_single_model_can_hold_is_unsatisfiable() -> None:
    topology = Topology((node("a0", 4, "A100"), node("h0", 4, "H100")))
    result = run(snap(topology, [job(1, gpu_count=2, nodes=2)]))
    assert result.pending[1].reason is Reason.UNSATISFIABLE
    assert started(run(snap(topology, [job(1, gpu_count=2, nodes=2, gpu_kind="any")])))


def test_a_node_with_two_models_gives_a_gang_only_gpus_of_one() -> None:
    both = Node(
        id="m0",
        name="m0",
        gpus=(
            Gpu(id="m0-g0", kind="A100", index=0, memory_mb=80_000),
            Gpu(id="m0-g1", kind="H100", index=1, memory_mb=80_000),
            Gpu(id="m0-g2", kind="H100", index=2, memory_mb=80_000),
        ),
    )
    topology = Topology((both, node("h0", 2, "H100")))
    result = run(snap(topology, [job(1, gpu_count=4, nodes=2)]))
    assert started(result)[1] == ("m0-g1", "m0-g2", "h0-g0", "h0-g1")


def test_single_node_jobs_and_named_kinds_are_unchanged() -> None:
    busy = [running(9, ["a0-g0", "a0-g1"])]
    result = run(
        snap(mixed(), [job(1, gpu_count=2), job(2, gpu_count=4, nodes=2, gpu_kind="h100")], busy)
    )
    assert started(result)[1] == ("a0-g2", "a0-g3")  # best fit, any model
    assert result.starts[1].node_ids == ("h0", "h1")


def test_submitting_a_gang_no_single_model_can_hold_is_refused_with_a_hint() -> None:
    topology = Topology((node("a0", 4, "A100"), node("h0", 4, "H100"), node("h1", 2, "H100")))
    with pytest.raises(InvalidRequest, match="--gpu-type any") as refused:
        validate_job_request(JobRequest("u", gpu_count=8, nodes=2), topology, JobLimits())
    assert refused.value.code == "too_many_nodes"
    for fine in (
        JobRequest("u", gpu_count=8, nodes=2, gpu_kind="any"),
        JobRequest("u", gpu_count=4, nodes=2),  # 2 + 2 on the H100s
        JobRequest("u", gpu_count=4, nodes=1),
    ):
        validate_job_request(fine, topology, JobLimits())


def test_options_name_the_shapes_a_gang_may_use() -> None:
    book = ShapeBook(Cluster(mixed(), NOW, {}, ()), ())
    gang = book.get(job(1, gpu_count=2, nodes=2))
    assert [sorted(o.nodes) for o in options(gang)] == [[1, 2]]  # only the H100s hold 2 nodes
    assert sorted(gang.nodes) == [0, 1, 2]  # the union, for summaries
    for single in (job(2, gpu_count=2), job(3, gpu_count=2, nodes=2, gpu_kind="any")):
        shape = book.get(single)
        assert options(shape) == (shape,) and sorted(shape.nodes) == [0, 1, 2]
