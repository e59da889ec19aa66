"""The usage accounting routes (issue #14): ``client.usage``.

A part composed into ``ProcPlanClient`` over its ``Transport``. Answers stay the server's JSON
(``wire.usage`` documents the shapes); instants go out as ISO 8601 strings.
"""

from __future__ import annotations

from typing import Any

from procplan.client.transport import Transport, segment

JsonDict = dict[str, Any]


class UsageApi:
    """``sreport`` (``report``), ``sacct`` (``finished``), ``seff`` (``job``) and one
    booking's use (``booking``)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def report(
        self, by: str = "user", start: str | None = None, end: str | None = None
    ) -> JsonDict:
        """``GET /api/v1/usage/report``: per user, tenant or node over ``[start, end)``."""
        params = {"by": by, "start": start, "end": end}
        return self._transport.call(
            "GET", "/api/v1/usage/report", params={k: v for k, v in params.items() if v}
        )

    def finished(
        self,
        *,
        user: str | None = None,
        state: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: int | None = None,
    ) -> JsonDict:
        """``GET /api/v1/usage/jobs``: jobs that finished in the window, newest first."""
        params = {"user": user, "state": state, "start": start, "end": end, "limit": limit}
        return self._transport.call(
            "GET", "/api/v1/usage/jobs", params={k: v for k, v in params.items() if v}
        )

    def job(self, job_id: str) -> JsonDict:
        """``GET /api/v1/jobs/{id}/usage``: the job's efficiency figures."""
        return self._transport.call("GET", f"/api/v1/jobs/{segment(job_id)}/usage")

    def booking(self, booking_id: int) -> JsonDict:
        """``GET /api/v1/bookings/{id}/usage``: booked, used and idle GPU-hours so far."""
        return self._transport.call("GET", f"/api/v1/bookings/{int(booking_id)}/usage")
