"""ProcPlan config parsing: every rejection says what to fix; round trip; demo cluster."""

from __future__ import annotations

import pytest

from procplan.core.errors import TopologyError
from procplan.core.model import Gpu, Node, Topology
from procplan.core.topology import demo_topology, parse_topology
from procplan.wire.compat import topology_config


def node(node_id: str, *gpu_ids: str, **extra: object) -> dict[str, object]:
    return {"id": node_id, "gpus": [{"id": g} for g in gpu_ids], **extra}


def test_parses_defaults_order_and_indexes() -> None:
    topo = parse_topology(
        {
            "nodes": [
                {"id": "a", "name": "Alpha", "gpus": [{"id": "a0", "kind": "A100"}, {"id": "a1"}]},
                {"id": "b", "gpus": []},
            ]
        }
    )
    assert topo.nodes == (
        Node("a", "Alpha", (Gpu("a0", "A100", 0), Gpu("a1", "unspecified", 1))),
        Node("b", "b", ()),
    )
    assert topo.node_of_gpu("a1") == "a"


def test_node_without_gpus_key_has_zero_gpus() -> None:
    assert parse_topology({"nodes": [{"id": "n"}]}).nodes[0].gpus == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "Configuration must be a JSON object"),
        ({}, "Configuration must contain a 'nodes' array"),
        ({"nodes": {}}, "Configuration must contain a 'nodes' array"),
        ({"nodes": []}, "Configuration must define at least one node"),
        ({"nodes": ["x"]}, "Node entry must be an object (node #1)"),
        ({"nodes": [{"gpus": []}]}, "Node id must not be empty (node #1)"),
        ({"nodes": [node("  ")]}, "Node id must not be empty (node #1)"),
        ({"nodes": [node("a"), node("a")]}, "Duplicate node id 'a'"),
        ({"nodes": [{"id": 5}]}, "Node id must be a string, got number (node #1)"),
        ({"nodes": [node("a", "")]}, "GPU id must not be empty (node 'a', GPU #1)"),
        ({"nodes": [node("a", "g", "g")]}, "Duplicate GPU id 'g'"),
        ({"nodes": [node("a", "g"), node("b", "g")]}, "Duplicate GPU id 'g'"),
        ({"nodes": [{"id": "a", "gpus": [{"id": True}]}]}, "GPU id must be a string, got boolean"),
        ({"nodes": [{"id": "a", "gpus": ["g"]}]}, "GPU entry must be an object"),
        ({"nodes": [{"id": "a", "gpus": {}}]}, "Node 'a': 'gpus' must be an array"),
        ({"nodes": [{"id": "a", "name": 3}]}, "Node 'a' name must be a string, got number"),
        (
            {"nodes": [{"id": "a", "gpus": [{"id": "g", "kind": []}]}]},
            "GPU 'g' kind must be a string, got array",
        ),
        ({"nodes": [node("a\x00b")]}, "contains a control character (U+0000)"),
        ({"nodes": [node("a", "g\x1f")]}, "contains a control character (U+001F)"),
    ],
)
def test_rejections(data: object, message: str) -> None:
    with pytest.raises(TopologyError) as info:
        parse_topology(data)
    assert message in info.value.message
    assert info.value.status == 400


def test_control_character_message_names_the_id() -> None:
    with pytest.raises(TopologyError, match=r"Node id 'a\\nb' contains a control character"):
        parse_topology({"nodes": [node("a\nb")]})


def test_round_trip_and_demo() -> None:
    demo = demo_topology()
    assert [n.id for n in demo.nodes] == ["node-a", "node-b"]
    assert [n.name for n in demo.nodes] == ["Demo Node A", "Demo Node B"]
    assert [len(n.gpus) for n in demo.nodes] == [4, 8]
    assert demo.nodes[0].gpus[0] == Gpu("node-a-gpu0", "A100", 0)
    assert {g.kind for g in demo.nodes[1].gpus} == {"H100"}
    assert parse_topology(topology_config(demo)) == demo
    assert isinstance(demo, Topology) and demo.gpu_count == 12
