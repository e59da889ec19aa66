"""Parsing of the human time arguments of the ``procplan`` commands.

Durations are compact (``2h``, ``90m``, ``3d``, ``1d12h``, ``1w``) because people type them
often; instants are ISO 8601 or ``now``. Naive instants are UTC, like everywhere in ProcPlan,
so a booking made from the CLI lands where the web calendar shows it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(
    r"(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?:in)?)?", re.IGNORECASE
)
_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
}


def parse_duration(text: str) -> timedelta:
    """``1w2d3h30m`` style (units in that order, each optional); must be positive.

    Raises ``ValueError`` with a message that shows the accepted forms.
    """
    cleaned = text.strip().replace(" ", "")
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None:
        raise ValueError(f"invalid duration {text!r}: use forms like 90m, 2h, 3d, 1d12h")
    total = sum(
        (_UNITS[unit] * int(amount) for unit, amount in match.groupdict().items() if amount),
        timedelta(),
    )
    if total <= timedelta():
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    return total


def ceil_minute(moment: datetime) -> datetime:
    """Round up to the next whole minute (unchanged when already whole)."""
    whole = moment.replace(second=0, microsecond=0)
    return whole if whole == moment else whole + timedelta(minutes=1)


def parse_instant(text: str, now: datetime) -> datetime:
    """``now`` (rounded up to the minute) or ISO 8601; naive means UTC. Result is aware UTC."""
    cleaned = text.strip()
    if cleaned.lower() == "now":
        return ceil_minute(now.astimezone(UTC))
    try:
        value = datetime.fromisoformat(cleaned)
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: use ISO 8601 like 2026-11-24T09:00 (UTC) or 'now'"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
