"""Notification channels on the wire (issue #14): never the whole URL back, which may hold a
password or a webhook's secret path; the scheme and host say which channel it is."""

from __future__ import annotations

from urllib.parse import urlsplit

from procplan.core.timeutil import Instant
from procplan.wire.base import Json, iso_or_none

__all__ = ["channel_json", "channels_json", "redacted"]


def redacted(url: str) -> str:
    """``scheme://host/…``: enough to tell channels apart, nothing secret."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "…"
    return f"{parts.scheme}://{host}/…" if parts.scheme else "…"


def channel_json(
    channel_id: int,
    user: str | None,
    url: str,
    events: str,
    label: str,
    created_at: Instant,
    last_sent_at: Instant | None,
    last_error: str | None,
    last_error_at: Instant | None,
) -> Json:
    return {
        "id": channel_id,
        "user": user,
        "cluster": user is None,
        "url": redacted(url),
        "events": "*" if events == "*" else events.split(","),
        "label": label,
        "created_at": iso_or_none(created_at),
        "last_sent_at": iso_or_none(last_sent_at),
        "last_error": last_error,
        "last_error_at": iso_or_none(last_error_at),
    }


def channels_json(channels: list[Json]) -> Json:
    return {"channels": channels, "total": len(channels)}
