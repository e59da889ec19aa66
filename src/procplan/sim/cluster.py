"""Simulated clusters from a short spec: ``"69x8"`` is 69 nodes of 8 GPUs, ``"2x8,4x2"``
mixes shapes. The result is the production ``core.model.Topology``, so the planner under
simulation sees exactly the values the server would give it."""

from __future__ import annotations

from procplan.core.model import Gpu, Node, Topology

SIM_GPU_KIND = "sim"


def parse_nodes(spec: str) -> Topology:
    """Nodes ``n0, n1, ...`` in spec order with GPUs ``n0-g0, ...``; ``ValueError`` on a bad
    spec (empty, a part without ``x``, a count below 1)."""
    nodes: list[Node] = []
    parts = [p.strip() for p in spec.split(",")]
    if not spec.strip() or not all(parts):
        raise ValueError(f"bad node spec {spec!r}: expected COUNTxGPUS[,COUNTxGPUS...]")
    for part in parts:
        count_text, sep, gpus_text = part.lower().partition("x")
        try:
            count, gpus = int(count_text), int(gpus_text)
        except ValueError:
            count = gpus = 0
        if not sep or count < 1 or gpus < 1:
            raise ValueError(f"bad node spec part {part!r}: expected COUNTxGPUS, both ≥ 1")
        for _ in range(count):
            node_id = f"n{len(nodes)}"
            devices = tuple(
                Gpu(id=f"{node_id}-g{i}", kind=SIM_GPU_KIND, index=i) for i in range(gpus)
            )
            nodes.append(Node(id=node_id, name=node_id, gpus=devices))
    return Topology(tuple(nodes))
