"""``parse_nodes``: the ``--nodes`` spec as a production Topology."""

from __future__ import annotations

import pytest

from procplan.sim.cluster import parse_nodes
from procplan.sim.engine import gang_nodes


def test_one_shape() -> None:
    topology = parse_nodes("69x8")
    assert len(topology.nodes) == 69
    assert topology.gpu_count == 552
    assert topology.nodes[68].gpu_ids[-1] == "n68-g7"
    assert topology.node_of_gpu("n3-g2") == "n3"


def test_mixed_shapes_in_order() -> None:
    topology = parse_nodes("2x8, 4X2")
    assert [len(n.gpus) for n in topology.nodes] == [8, 8, 2, 2, 2, 2]
    assert topology.gpu_count == 24


@pytest.mark.parametrize("spec", ["", "8", "0x8", "2x0", "ax8", "2x8,", "2x8x1", "-1x8"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="bad node spec"):
        parse_nodes(spec)


def test_gang_width_is_the_fewest_even_split() -> None:
    topology = parse_nodes("4x8")
    assert [gang_nodes(g, topology) for g in (1, 8, 12, 16, 24, 32)] == [1, 1, 2, 2, 3, 4]
    assert gang_nodes(33, topology) is None
    assert gang_nodes(64, topology) is None
