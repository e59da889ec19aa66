"""iCalendar (RFC 5545) text of bookings, for calendar feeds (issue #17, ADR 0022).

Pure and small: lines end in CRLF and are folded at 75 octets (never inside a UTF-8
sequence), TEXT values escape backslash, semicolon, comma and newlines, times are UTC
(``...Z``), and each booking keeps one UID for its whole life, so a calendar app updates
the event (a release shortens it, a cancel marks it cancelled) instead of adding a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from procplan.core.model import Booking, BookingStatus
from procplan.core.timeutil import Instant

__all__ = ["booking_event", "calendar_text", "escape_text", "fold", "ical_time"]

PRODID = "-//ProcPlan//GPU bookings//EN"
_STATUS = {
    BookingStatus.ACTIVE: "CONFIRMED",
    BookingStatus.COMPLETED: "CONFIRMED",
    BookingStatus.CANCELLED: "CANCELLED",
}


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): ``\\`` ``;`` ``,`` escaped, newlines as ``\\n``;
    other control characters (not allowed in TEXT) dropped."""
    out = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return "".join(ch for ch in out if ch == "\t" or (ord(ch) >= 0x20 and ord(ch) != 0x7F))


def fold(line: str) -> str:
    """One content line folded (RFC 5545 3.1): at most 75 octets per physical line, each
    continuation starting with a space; a UTF-8 character is never split. Ends in CRLF."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line + "\r\n"
    parts: list[str] = []
    limit = 75
    current = ""
    size = 0
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74  # the leading space takes one octet
        current += ch
        size += width
    parts.append(current)
    return "\r\n ".join(parts) + "\r\n"


def ical_time(instant: Instant) -> str:
    """``20261123T100000Z``: a DATE-TIME in UTC."""
    return datetime.fromtimestamp(instant, UTC).strftime("%Y%m%dT%H%M%SZ")


def booking_event(b: Booking, host: str, stamp: Instant) -> list[str]:
    """One VEVENT's content lines (unfolded). ``host`` scopes the UID (RFC 5545 3.8.4.7)."""
    count = len(b.gpu_ids)
    summary = f"{b.label} - {count} GPU{'s' if count != 1 else ''} on {b.node_id}"
    description = (
        f"Booking {b.id} of {b.user}\nGPUs: {', '.join(b.gpu_ids)}\n"
        f"Priority: {b.priority.value}\nStatus: {b.status.value}"
    )
    return [
        "BEGIN:VEVENT",
        f"UID:booking-{b.id}@{escape_text(host)}",
        f"DTSTAMP:{ical_time(stamp)}",
        f"DTSTART:{ical_time(b.start)}",
        f"DTEND:{ical_time(max(b.end, b.start + 60))}",
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"LOCATION:{escape_text(b.node_id)}",
        f"STATUS:{_STATUS[b.status]}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
    ]


def calendar_text(name: str, bookings: Iterable[Booking], host: str, stamp: Instant) -> str:
    """A whole VCALENDAR: ``name`` shown by the calendar app, one VEVENT per booking."""
    lines: Sequence[str] = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
        *(line for b in bookings for line in booking_event(b, host, stamp)),
        "END:VCALENDAR",
    ]
    return "".join(fold(line) for line in lines)
