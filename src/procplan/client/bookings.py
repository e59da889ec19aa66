"""The native booking routes (``/api/v1/bookings``, ``/api/v1/calendar``): ``client.bookings``.

A part composed into ``ProcPlanClient`` over its ``Transport``. Booking answers stay plain
dicts: the CLI's tables and the week view show them as sent, and ``--json`` prints them whole.
The ProcPlan-compatible booking routes (``/api/book`` …) are ``client.compat``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict, Unpack

from procplan.client.errors import TimeArg, format_time
from procplan.client.transport import Transport, drop_none

JsonDict = dict[str, Any]
BOOKINGS = "/api/v1/bookings"
FEEDS = "/api/v1/feeds"


class BookingOptions(TypedDict, total=False):
    """What a booking asks besides its node and start: ``end`` or ``duration_minutes``, and
    ``gpu_ids`` or ``gpu_count`` (the server checks the combination), ``priority``, ``label``;
    ``repeat_until`` (a UTC date) makes it a weekly series, ``dry_run`` lists the series
    without booking it."""

    end: TimeArg | None
    duration_minutes: int | None
    gpu_ids: Sequence[str] | None
    gpu_count: int | None
    priority: str | None
    label: str | None
    repeat_until: str | None
    dry_run: bool | None


class BookingChanges(TypedDict, total=False):
    """What ``edit`` changes; the rest of the booking stays."""

    start: TimeArg | None
    end: TimeArg | None
    gpu_ids: Sequence[str] | None
    label: str | None
    priority: str | None


class BookingsApi:
    """Book GPUs for a span of time, list, edit, release and cancel bookings; the calendar
    and its iCalendar feeds."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def create(self, node_id: str, start: TimeArg, **options: Unpack[BookingOptions]) -> JsonDict:
        """``POST /api/v1/bookings``: ``{"booking": {...}, "conflicts_with_jobs": [...]}``.

        Give ``end`` or ``duration_minutes``, and ``gpu_ids`` or ``gpu_count``; the server
        validates the combination so that its message is the one users see.
        """
        body = _booking_body(node_id, start, options)
        return self._transport.call("POST", BOOKINGS, body=body)

    def check(self, node_id: str, start: TimeArg, **options: Unpack[BookingOptions]) -> JsonDict:
        """``POST /api/v1/bookings/check``: what ``create`` would do, without booking:
        ``{"node_id", "gpu_ids", "start", "end", "user", "conflicts_with_jobs"}``, or the
        error ``create`` would raise."""
        body = _booking_body(node_id, start, options)
        return self._transport.call("POST", f"{BOOKINGS}/check", body=body)

    def list(
        self,
        *,
        node: str | None = None,
        gpu: str | None = None,
        user: str | None = None,
        status: str | None = None,
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> JsonDict:
        """``GET /api/v1/bookings``: ``{"bookings": [...], "total": int}``; filters are ANDed."""
        params = {
            "node": node,
            "gpu": gpu,
            "user": user,
            "status": status,
            "start": format_time(start) if start is not None else None,
            "end": format_time(end) if end is not None else None,
            "limit": limit,
            "offset": offset,
        }
        return self._transport.call("GET", BOOKINGS, params=params)

    def get(self, booking_id: int) -> JsonDict:
        """``GET /api/v1/bookings/{id}``."""
        return self._transport.call("GET", f"{BOOKINGS}/{booking_id}")

    def edit(self, booking_id: int, **changes: Unpack[BookingChanges]) -> JsonDict:
        """``PATCH /api/v1/bookings/{id}``: move, resize, regroup, relabel or reprioritise
        (ADR 0024); what is left out (``None``) stays. The booking as edited, with
        ``conflicts_with_jobs`` when its new claims cover open-ended jobs of others."""
        start, end, gpu_ids = changes.get("start"), changes.get("end"), changes.get("gpu_ids")
        body = drop_none(
            {
                "start": format_time(start) if start is not None else None,
                "end": format_time(end) if end is not None else None,
                "gpu_ids": None if gpu_ids is None else [*gpu_ids],
                "label": changes.get("label"),
                "priority": changes.get("priority"),
            }
        )
        return self._transport.call("PATCH", f"{BOOKINGS}/{booking_id}", body=body)

    def set_end(self, booking_id: int, end: TimeArg) -> JsonDict:
        """``PATCH /api/v1/bookings/{id}``: move the end (extend or shorten)."""
        body = {"end": format_time(end)}
        return self._transport.call("PATCH", f"{BOOKINGS}/{booking_id}", body=body)

    def release(self, booking_id: int) -> JsonDict:
        """``POST /api/v1/bookings/{id}/release``: complete now, freeing the future."""
        return self._transport.call("POST", f"{BOOKINGS}/{booking_id}/release")

    def keep(self, booking_id: int) -> JsonDict:
        """``POST /api/v1/bookings/{id}/keep``: never reclaim it as idle (ADR 0013); answers
        ``{"booking": ..., "idle": ...}``."""
        return self._transport.call("POST", f"{BOOKINGS}/{booking_id}/keep")

    def idle(self, booking_id: int) -> JsonDict:
        """``GET /api/v1/bookings/{id}/idle``: idle since, warned at, release at, kept,
        and why it was released."""
        return self._transport.call("GET", f"{BOOKINGS}/{booking_id}/idle")

    def cancel(self, booking_id: int) -> JsonDict:
        """``POST /api/v1/bookings/{id}/cancel``."""
        return self._transport.call("POST", f"{BOOKINGS}/{booking_id}/cancel")

    def new_feed(self) -> JsonDict:
        """``POST /api/v1/feeds``: a new calendar-feed secret for the signed-in user (ADR
        0022), shown once inside ``{"id", "user", "url", "node_url"}``; the older one stops.
        ``node_url`` has a ``{node_id}`` placeholder."""
        return self._transport.call("POST", FEEDS)

    def revoke_feed(self) -> JsonDict:
        """``DELETE /api/v1/feeds``: ``{"user", "revoked"}``; subscribed apps get 404."""
        return self._transport.call("DELETE", FEEDS)

    def calendar(
        self, start: TimeArg, end: TimeArg, node_ids: Sequence[str] | None = None
    ) -> JsonDict:
        """``GET /api/v1/calendar``: per-GPU claim intervals over ``[start, end)``."""
        params = {
            "start": format_time(start),
            "end": format_time(end),
            "node_ids": ",".join(node_ids) if node_ids else None,
        }
        return self._transport.call("GET", "/api/v1/calendar", params=params)


def _booking_body(node_id: str, start: TimeArg, options: BookingOptions) -> JsonDict:
    end, gpu_ids, until = options.get("end"), options.get("gpu_ids"), options.get("repeat_until")
    return drop_none(
        {
            "node_id": node_id,
            "gpu_ids": None if gpu_ids is None else [*gpu_ids],
            "gpu_count": options.get("gpu_count"),
            "start": format_time(start),
            "end": format_time(end) if end is not None else None,
            "duration_minutes": options.get("duration_minutes"),
            "priority": options.get("priority"),
            "label": options.get("label"),
            "repeat": None if until is None else {"every": "week", "until": until},
            "dry_run": options.get("dry_run") or None,
        }
    )
