"""ProcPlan's JSON cluster configuration: parse it strictly, and a demo cluster (the file's
shape written back is ``procplan.wire.compat.topology_config``).

The config file is user-edited and reloaded at run time (``/api/reload_config``), so parsing must
fully validate before anything is swapped in and must say exactly what to fix. Shape (accepted
unchanged from ProcPlan)::

    {"nodes": [{"id": str, "name"?: str, "gpus": [{"id": str, "kind"?: str}]}]}

Deliberate fix over ProcPlan: GPU ids are unique across the whole cluster, because the ledger
keys claims by GPU id alone.
"""

from __future__ import annotations

from typing import Any

from procplan.core.errors import TopologyError
from procplan.core.model import UNSPECIFIED_KIND, Gpu, Node, Topology

__all__ = ["demo_topology", "parse_topology"]


def _control_char(text: str) -> str | None:
    """The first control character (C0 or DEL) in ``text``, if any.

    Ids end up in URLs, terminal tables and log lines, where control characters corrupt output.
    """
    for char in text:
        if char < "\x20" or char == "\x7f":
            return char
    return None


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _check_text(value: str, what: str) -> None:
    bad = _control_char(value)
    if bad is not None:
        raise TopologyError(f"{what} {value!r} contains a control character (U+{ord(bad):04X})")


def _required_id(raw: dict[str, Any], what: str, where: str) -> str:
    """A non-empty string id without control characters; surrounding spaces are dropped (only
    spaces: a stray tab or newline is reported, not silently removed)."""
    value = raw.get("id")
    if value is None:
        raise TopologyError(f"{what} id must not be empty ({where})")
    if not isinstance(value, str):
        raise TopologyError(f"{what} id must be a string, got {_type_name(value)} ({where})")
    value = value.strip(" ")
    if not value:
        raise TopologyError(f"{what} id must not be empty ({where})")
    _check_text(value, f"{what} id")
    return value


def _optional_text(raw: dict[str, Any], key: str, default: str, what: str) -> str:
    """An optional display string: missing, null or blank means ``default``."""
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise TopologyError(f"{what} must be a string, got {_type_name(value)}")
    value = value.strip(" ")
    if not value:
        return default
    _check_text(value, what)
    return value


def _parse_gpus(raw_gpus: object, node_id: str, seen_gpus: set[str]) -> tuple[Gpu, ...]:
    if raw_gpus is None:
        return ()
    if not isinstance(raw_gpus, list):
        raise TopologyError(f"Node '{node_id}': 'gpus' must be an array")
    gpus: list[Gpu] = []
    for position, raw in enumerate(raw_gpus):
        where = f"node '{node_id}', GPU #{position + 1}"
        if not isinstance(raw, dict):
            raise TopologyError(f"GPU entry must be an object ({where})")
        gpu_id = _required_id(raw, "GPU", where)
        if gpu_id in seen_gpus:
            raise TopologyError(f"Duplicate GPU id '{gpu_id}'")
        seen_gpus.add(gpu_id)
        kind = _optional_text(raw, "kind", UNSPECIFIED_KIND, f"GPU '{gpu_id}' kind")
        gpus.append(Gpu(id=gpu_id, kind=kind, index=position))
    return tuple(gpus)


def parse_topology(data: object) -> Topology:
    """Validate a decoded JSON config and build the ``Topology``; ``TopologyError`` says why not.

    Node and GPU order is kept (it is the order of every calendar row); ``Gpu.index`` is the
    position within the node.
    """
    if not isinstance(data, dict):
        raise TopologyError("Configuration must be a JSON object")
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list):
        raise TopologyError("Configuration must contain a 'nodes' array")
    if not raw_nodes:
        raise TopologyError("Configuration must define at least one node")
    nodes: list[Node] = []
    seen_nodes: set[str] = set()
    seen_gpus: set[str] = set()
    for position, raw in enumerate(raw_nodes):
        if not isinstance(raw, dict):
            raise TopologyError(f"Node entry must be an object (node #{position + 1})")
        node_id = _required_id(raw, "Node", f"node #{position + 1}")
        if node_id in seen_nodes:
            raise TopologyError(f"Duplicate node id '{node_id}'")
        seen_nodes.add(node_id)
        name = _optional_text(raw, "name", node_id, f"Node '{node_id}' name")
        gpus = _parse_gpus(raw.get("gpus"), node_id, seen_gpus)
        nodes.append(Node(id=node_id, name=name, gpus=gpus))
    return Topology(nodes=tuple(nodes))


def demo_topology() -> Topology:
    """A simulated two-node cluster for ``--demo`` and tutorials: 4×A100 and 8×H100."""

    def node(node_id: str, name: str, count: int, kind: str) -> Node:
        gpus = tuple(Gpu(id=f"{node_id}-gpu{i}", kind=kind, index=i) for i in range(count))
        return Node(id=node_id, name=name, gpus=gpus)

    return Topology(
        nodes=(
            node("node-a", "Demo Node A", 4, "A100"),
            node("node-b", "Demo Node B", 8, "H100"),
        )
    )
