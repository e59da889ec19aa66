"""ProcPlan's small shapes (COMPAT.md §1): the node object, the write answers, the config file.

Its availability grids are ``wire.calendar`` (hours) and ``wire.dayview`` (days); its booking
objects are ``wire.bookings``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from procplan.core.model import Node, Topology
from procplan.wire.base import Json

__all__ = [
    "booking_status",
    "bulk_availability",
    "nodes_json",
    "procplan_node",
    "reload_ok",
    "topology_config",
]


def procplan_node(node: Node) -> Json:
    """The node object of ``/api/nodes`` and of every availability payload."""
    return {
        "id": node.id,
        "name": node.name,
        "gpu_count": len(node.gpus),
        "gpus": [{"id": gpu.id, "kind": gpu.kind} for gpu in node.gpus],
    }


def nodes_json(nodes: Iterable[Node]) -> Json:
    """``GET /api/nodes``, in config order."""
    return {"nodes": [procplan_node(node) for node in nodes]}


def bulk_availability(answers: list[Json]) -> Json:
    """``POST /api/availability_bulk``: one availability answer per node, in the order asked."""
    return {"availability": answers}


def booking_status(booking_id: int, status: Literal["completed", "cancelled"]) -> Json:
    """The answer of ``/api/mark_done`` (``completed``) and ``DELETE /api/bookings/{id}``
    (``cancelled``)."""
    return {"booking_id": booking_id, "status": status}


def reload_ok() -> Json:
    """``POST /api/reload_config`` succeeded."""
    return {"status": "ok"}


def topology_config(topology: Topology) -> Json:
    """The config-file shape of ``topology`` (the inverse of ``core.topology.parse_topology``)."""
    return {
        "nodes": [
            {
                "id": node.id,
                "name": node.name,
                "gpus": [{"id": gpu.id, "kind": gpu.kind} for gpu in node.gpus],
            }
            for node in topology.nodes
        ]
    }
