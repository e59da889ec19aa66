"""The ProcPlan-compatible routes (``COMPAT.md`` section 1): ``client.compat``.

A part composed into ``ProcPlanClient`` over its ``Transport``. These are the routes existing
ProcPlan clients call (``/api/nodes``, ``/api/availability``, ``/api/book`` …); ``procplan-cli``
and the week view read them. Answers are the server's JSON, whose shape is the compatibility
contract itself, so they stay plain dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from procplan.client.errors import TimeArg, format_time
from procplan.client.transport import Transport, drop_none

JsonDict = dict[str, Any]


class CompatApi:
    """Nodes, availability grids and whole-hour bookings the ProcPlan way."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def nodes(self) -> JsonDict:
        """``GET /api/nodes``: nodes in config order with their GPUs."""
        return self._transport.call("GET", "/api/nodes")

    def availability(
        self,
        node_id: str,
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        granularity: str | None = None,
    ) -> JsonDict:
        """``GET /api/availability`` for one node (hour or day grid)."""
        params = {
            "node_id": node_id,
            "start": format_time(start) if start is not None else None,
            "end": format_time(end) if end is not None else None,
            "granularity": granularity,
        }
        return self._transport.call("GET", "/api/availability", params=params)

    def availability_bulk(
        self,
        node_ids: Sequence[str] | None = None,
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        granularity: str | None = None,
    ) -> JsonDict:
        """``POST /api/availability_bulk``: one availability payload per node, in order."""
        body = drop_none(
            {
                "node_ids": None if node_ids is None else [*node_ids],
                "start": format_time(start) if start is not None else None,
                "end": format_time(end) if end is not None else None,
                "granularity": granularity,
            }
        )
        return self._transport.call("POST", "/api/availability_bulk", body=body)

    def book(
        self,
        node_id: str,
        start: TimeArg,
        end: TimeArg,
        user_label: str,
        *,
        priority: str | None = None,
        gpu_ids: Sequence[str] | None = None,
        gpu_count: int | None = None,
    ) -> JsonDict:
        """``POST /api/book`` (whole hours only); returns ``{"booking_id", ...}``."""
        body = drop_none(
            {
                "node_id": node_id,
                "start": format_time(start),
                "end": format_time(end),
                "user_label": user_label,
                "priority": priority,
                "gpu_ids": None if gpu_ids is None else [*gpu_ids],
                "gpu_count": gpu_count,
            }
        )
        return self._transport.call("POST", "/api/book", body=body)

    def mark_done(self, booking_id: int) -> JsonDict:
        """``POST /api/mark_done``: end a booking early."""
        return self._transport.call("POST", "/api/mark_done", body={"booking_id": booking_id})

    def cancel(self, booking_id: int) -> JsonDict:
        """``DELETE /api/bookings/{id}``."""
        return self._transport.call("DELETE", f"/api/bookings/{booking_id}")

    def reload_config(self) -> JsonDict:
        """``POST /api/reload_config``: re-read the server's topology file."""
        return self._transport.call("POST", "/api/reload_config")
