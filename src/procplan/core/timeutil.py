"""Instants are ``int`` seconds since the Unix epoch, UTC; these helpers convert at the edges.

Integers keep the ledger and calendar arithmetic cheap (no datetime objects on hot paths)
and store the same way in SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

Instant = int

HOUR = 3600
DAY = 24 * HOUR
MINUTE = 60
# The instants every API can write back as ``YYYY-MM-DDTHH:MM:SS+00:00``: years 1 to 9999 in
# UTC. An instant outside is refused where it enters (after its offset and any duration are
# applied), because nothing downstream could ever render it.
MIN_INSTANT = -62_135_596_800  # 0001-01-01T00:00:00+00:00
MAX_INSTANT = 253_402_300_799  # 9999-12-31T23:59:59+00:00
RANGE_MESSAGE = "must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z"


def parse_instant(text: str) -> Instant:
    """Parse anything ``datetime.fromisoformat`` accepts; naive means UTC, date-only = midnight.

    Raises ``ValueError`` with ``fromisoformat``'s message on bad input, and when the instant
    falls outside years 1..9999 once its offset is applied (``0001-01-01T00:00+14:00`` is in
    year 0 in UTC). Sub-second parts are truncated (the ledger works in whole seconds).
    """
    if not isinstance(text, str):
        raise ValueError(f"Invalid isoformat string: {text!r}")
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    instant = int(value.timestamp() // 1)
    if not in_range(instant):
        raise ValueError(f"'{text.strip()}' {RANGE_MESSAGE}")
    return instant


def aware_moment(value: object) -> datetime | None:
    """An aware datetime from wire ISO 8601 text (or an aware datetime, as is); ``None`` for
    null, naive or unparsable values. For clients reading answers they must not trust."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def in_range(instant: Instant) -> bool:
    """True when ``instant`` can be written as an ISO timestamp (years 1..9999 UTC)."""
    return MIN_INSTANT <= instant <= MAX_INSTANT


def to_datetime(instant: Instant) -> datetime:
    """The aware UTC datetime of an instant."""
    return datetime.fromtimestamp(instant, tz=UTC)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_HOUR_SUFFIXES = tuple(f"T{hour:02d}:00:00+00:00" for hour in range(24))
_HOUR_PARTS = tuple(f"T{hour:02d}:" for hour in range(24))
_MINUTE_SECOND_PARTS = tuple(f"{sec // 60:02d}:{sec % 60:02d}+00:00" for sec in range(HOUR))
_DAY_PREFIXES: dict[int, str] = {}
_DAY_PREFIX_CAP = 100_000


def to_iso(instant: Instant) -> str:
    """``YYYY-MM-DDTHH:MM:SS+00:00``, the one timestamp format every API returns.

    Calendar payloads format tens of thousands of instants per request, so integer instants take
    a fast path: the date part is memoised per day (bounded cache) and the time of day is
    assembled from precomputed parts (format specs are slow). The output is identical to
    ``datetime.isoformat``; anything that is not a plain ``int`` goes through ``datetime``.
    """
    if type(instant) is not int:
        return datetime.fromtimestamp(instant, tz=UTC).isoformat()
    day, rem = divmod(instant, DAY)
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        prefix = date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
        if len(_DAY_PREFIXES) >= _DAY_PREFIX_CAP:
            _DAY_PREFIXES.clear()
        _DAY_PREFIXES[day] = prefix
    if rem % HOUR == 0:
        return prefix + _HOUR_SUFFIXES[rem // HOUR]
    return prefix + _HOUR_PARTS[rem // HOUR] + _MINUTE_SECOND_PARTS[rem % HOUR]


def date_key(instant: Instant) -> str:
    """``YYYY-MM-DD`` of the UTC date an instant falls on."""
    return datetime.fromtimestamp(instant, tz=UTC).date().isoformat()


def floor_to(instant: Instant, step: int) -> Instant:
    """Round down to a multiple of ``step`` seconds since the epoch."""
    return instant - instant % step


def ceil_to(instant: Instant, step: int) -> Instant:
    """Round up to a multiple of ``step`` seconds since the epoch."""
    return -(-instant // step) * step


def is_aligned(instant: Instant, step: int) -> bool:
    """True when ``instant`` sits exactly on a multiple of ``step``."""
    return instant % step == 0
