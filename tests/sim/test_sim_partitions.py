"""Clusters from files (Philly machines, Alibaba nodes) and Helios-style per-VC partitions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from sim_kit import needs_trace, trace_file

from procplan.core.model import Gpu
from procplan.sim.cluster import (
    parse_alibaba_nodes,
    parse_philly_machines,
    parse_vc_nodes,
    partition_by_group,
)
from procplan.sim.engine import simulate
from procplan.sim.traces import TraceJob

needs_traces = needs_trace(
    "philly_cluster_machine_list.csv",
    "alibaba_openb_node_list_gpu_node.csv",
    "philly_vc_nodes_helios_qssf.csv",
)

MACHINES = "machineId, number of GPUs, single GPU mem\nm0,2, 12GB\nm7,8, 24GB\n"
ALIBABA_NODES = (
    "sn,cpu_milli,memory_mib,gpu,model\n"
    "openb-node-0000,64000,262144,2,P100\n"
    "openb-node-0001,96000,786432,0,\n"
    "openb-node-0002,96000,786432,8,G2\n"
)
VCS = "vc,node num\nvc-a,2\nvc-b,1\n"


def test_philly_machines_keep_order_and_take_the_memory_as_kind() -> None:
    topology = parse_philly_machines(MACHINES)
    assert [n.id for n in topology.nodes] == ["m0", "m7"]
    assert topology.gpu_count == 10
    assert topology.nodes[0].gpus[1] == Gpu(id="m0-g1", kind="12GB", index=1, memory_mb=12288)
    assert {g.kind for g in topology.nodes[1].gpus} == {"24GB"}
    assert topology.node_of_gpu("m7-g7") == "m7"


def test_alibaba_nodes_are_the_gpu_nodes_with_their_model() -> None:
    topology = parse_alibaba_nodes(ALIBABA_NODES)
    assert [n.id for n in topology.nodes] == ["openb-node-0000", "openb-node-0002"]
    assert [g.kind for g in topology.nodes[1].gpus] == ["G2"] * 8
    assert topology.nodes[0].gpus[0].memory_mb is None


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_philly_machines, MACHINES + "m9,two, 12GB\n", "line 4: invalid literal"),
        (parse_philly_machines, MACHINES + "m9,2, 12 gigs\n", "line 4: bad machine 'm9'"),
        (parse_philly_machines, MACHINES + "m0,2, 12GB\n", "line 4: node 'm0' already on line 2"),
        (parse_philly_machines, "machineId, number of GPUs\nm0,2\n", "missing columns single"),
        (parse_alibaba_nodes, ALIBABA_NODES + "n9,1,1,-2,T4\n", "line 5: negative GPU count"),
        (parse_alibaba_nodes, ALIBABA_NODES + "n9,1,1,4,\n", "line 5: bad node 'n9'"),
        (parse_vc_nodes, VCS + "vc-c,0\n", "line 4: bad VC row 'vc-c'"),
        (parse_vc_nodes, VCS + "vc-a,3\n", "line 4: bad VC row 'vc-a'"),
        (parse_vc_nodes, "vc,nodes\nvc-a,2\n", "missing columns node num"),
    ],
)
def test_bad_rows_name_their_line(parse: Callable[[str], object], text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_each_vc_gets_its_own_cluster_and_its_jobs() -> None:
    jobs = [
        TraceJob(1, 0, 100, 8, "vc-b"),
        TraceJob(2, 5, 10, 1, "vc-a"),
        TraceJob(3, 6, 10, 4, "tiny"),
        TraceJob(4, 9, 10, 16, "vc-a"),
    ]
    assert parse_vc_nodes(VCS) == {"vc-a": 2, "vc-b": 1}
    partitions, dropped = partition_by_group(jobs, parse_vc_nodes(VCS), gpus_per_node=8)
    assert [(vc, [j.id for j in js], t.gpu_count) for vc, js, t in partitions] == [
        ("vc-a", [2, 4], 16),
        ("vc-b", [1], 8),
    ]
    assert dropped == [jobs[2]]
    node_ids = [n.id for _, _, t in partitions for n in t.nodes]
    assert node_ids == ["vc-a-n0", "vc-a-n1", "vc-b-n0"]
    gpu_ids = [g for _, _, t in partitions for n in t.nodes for g in n.gpu_ids]
    assert len(set(gpu_ids)) == len(gpu_ids) == 24
    # Each partition replays on its own; the 16-GPU job spans both vc-a nodes.
    vc_a = partitions[0]
    result = simulate(vc_a[1], vc_a[2])
    assert [(r.id, r.start_s) for r in result.records] == [(2, 5), (4, 15)]


def test_a_vc_without_jobs_still_gets_its_cluster() -> None:
    partitions, dropped = partition_by_group([], {"vc-a": 1}, gpus_per_node=4)
    assert [(vc, js, t.gpu_count) for vc, js, t in partitions] == [("vc-a", [], 4)]
    assert dropped == []
    with pytest.raises(ValueError, match="gpus_per_node"):
        partition_by_group([], {"vc-a": 1}, gpus_per_node=0)


@needs_traces
def test_the_real_cluster_files() -> None:
    philly = parse_philly_machines(
        trace_file("philly_cluster_machine_list.csv").read_text(encoding="utf-8")
    )
    assert (len(philly.nodes), philly.gpu_count) == (552, 2490)
    assert Counter((len(n.gpus), n.gpus[0].kind) for n in philly.nodes) == {
        (2, "12GB"): 321,
        (8, "24GB"): 231,
    }
    alibaba = parse_alibaba_nodes(
        trace_file("alibaba_openb_node_list_gpu_node.csv").read_text(encoding="utf-8")
    )
    assert (len(alibaba.nodes), alibaba.gpu_count) == (1213, 6212)
    assert Counter(len(n.gpus) for n in alibaba.nodes) == {1: 24, 2: 518, 4: 54, 8: 617}
    assert Counter(n.gpus[0].kind for n in alibaba.nodes)["G2"] == 549
    vcs = parse_vc_nodes(trace_file("philly_vc_nodes_helios_qssf.csv").read_text(encoding="utf-8"))
    assert (len(vcs), sum(vcs.values())) == (11, 352)
    assert vcs["6214e9"] == 64
