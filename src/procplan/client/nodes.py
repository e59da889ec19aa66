"""The node routes (ADR 0006, ``/api/v1``): ``client.nodes``.

A part composed into ``ProcPlanClient`` over its ``Transport``. Node answers stay the server's
JSON as plain dicts: ``present.gpus`` renders them as sent (states, flags and process kinds are
the server's classification) and a typed copy would only rename what it shows.
"""

from __future__ import annotations

from typing import Any

from procplan.client.errors import TimeArg, format_time
from procplan.client.transport import Transport, segment

JsonDict = dict[str, Any]
NODES = "/api/v1/nodes"


class NodesApi:
    """The cluster's nodes, their GPU history and the cluster's totals."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(self) -> JsonDict:
        """``GET /api/v1/nodes`` → ``{"generated_at", "summary", "nodes"}``: every node with
        its state, agent, GPUs (index, uuid, memory), latest readings, holder, flags and
        processes."""
        return self._transport.call("GET", NODES)

    def get(self, node_id: str) -> JsonDict:
        """``GET /api/v1/nodes/{id}``: one node object (404 ``unknown_node`` if unknown)."""
        return self._transport.call("GET", f"{NODES}/{segment(node_id)}")

    def history(
        self,
        node_id: str,
        metric: str = "utilization",
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        step: int | None = None,
        agg: str | None = None,
    ) -> JsonDict:
        """``GET /api/v1/nodes/{id}/history`` → ``{"metric", "unit", "step", "series": [...]}``
        with one series of ``[instant, value]`` points per GPU; ``metric`` is one of
        ``utilization``, ``memory_used``, ``temperature``, ``power``; ``agg`` ``avg`` or
        ``max``. Unset arguments take the server's defaults."""
        params = {
            "metric": metric,
            "start": format_time(start) if start is not None else None,
            "end": format_time(end) if end is not None else None,
            "step": step,
            "agg": agg,
        }
        return self._transport.call("GET", f"{NODES}/{segment(node_id)}/history", params=params)

    # ---- maintenance (admins, ADR 0020) ---------------------------------------------------

    def drain(self, node_id: str, reason: str | None = None) -> JsonDict:
        """``POST /api/v1/nodes/{id}/drain``: no new jobs or bookings start there; the
        answer is the node's maintenance state and the bookings whose owners were told."""
        body = {} if reason is None else {"reason": reason}
        return self._transport.call("POST", f"{NODES}/{segment(node_id)}/drain", body=body)

    def resume(self, node_id: str) -> JsonDict:
        """``POST /api/v1/nodes/{id}/resume``: undo a drain or a removal."""
        return self._transport.call("POST", f"{NODES}/{segment(node_id)}/resume", body={})

    def remove(self, node_id: str) -> JsonDict:
        """``POST /api/v1/nodes/{id}/remove``: retire the node, history kept (409
        ``node_in_use`` while jobs run or bookings have not ended)."""
        return self._transport.call("POST", f"{NODES}/{segment(node_id)}/remove", body={})

    def cluster_status(self) -> JsonDict:
        """``GET /api/v1/cluster/status``: GPU, node and job totals (the Go scheduler's shape)."""
        return self._transport.call("GET", "/api/v1/cluster/status")
