"""Parsing of the human time arguments of the ``procplan`` commands, and the zone they mean.

Durations are compact (``2h``, ``90m``, ``3d``, ``1d12h``, ``1w``) because people type them
often. Instants (``parse_when``) are what people say: ``now``, ``+2h``, ``today 14:00``,
``tomorrow 09:00``, ``mon 14:00`` (the next Monday at 14:00), or ISO 8601 with or without a
zone. Wall-clock forms and zone-less ISO mean the *display zone*: ``--tz ZONE``, else
``$PROCPLAN_TZ``, else this machine's zone. Storage and the API stay UTC: every result is an
aware UTC instant, and tables convert back to the display zone (``format.short_time``).

``parse_when`` is pure (the caller passes ``now`` and the zone); the display zone is the only
state, set once per command line by the app's callback.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

ZONE_ENV = "PROCPLAN_TZ"
UTC_NAMES = {"UTC", "Z", "ETC/UTC", "UNIVERSAL", "ETC/UNIVERSAL", "ZULU", "ETC/ZULU", "GMT"}
UTC_NAMES |= {"ETC/GMT", "GMT0", "ETC/GMT0", "GMT+0", "ETC/GMT+0", "GMT-0", "ETC/GMT-0", "UCT"}

_DURATION = re.compile(
    r"(?:(?P<w>\d+)w)?(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?:in)?)?", re.IGNORECASE
)
_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
}
_DAY_WORDS = re.compile(r"(?P<day>[a-z]+)(?:\s+(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?)?")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FORMS = (
    "use now, +2h, +30m, +1d, 'today 14:00', 'tomorrow 09:00', 'mon 14:00' "
    "or ISO 8601 like 2026-11-24T09:00 (local time) or 2026-11-24T09:00Z"
)


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


def _wall_clock(day: date, hour: int, minute: int, zone: tzinfo, text: str) -> datetime:
    """``day hour:minute`` on the clocks of ``zone``, as UTC. A time the clocks skip (the
    spring-forward gap) is refused; a time they show twice (fall back) is the first one."""
    if hour > 23 or minute > 59:
        raise ValueError(f"invalid time {text!r}: the hour is 0-23, the minute 0-59")
    local = datetime.combine(day, time(hour, minute), tzinfo=zone)
    moment = local.astimezone(UTC)
    back = moment.astimezone(zone)
    if (back.date(), back.hour, back.minute) != (day, hour, minute):
        raise ValueError(
            f"invalid time {text!r}: {day} {hour:02d}:{minute:02d} does not exist in "
            f"{zone_name(zone)} (the clocks skip it)"
        )
    return moment


def _day_words(cleaned: str, now: datetime, zone: tzinfo, text: str) -> datetime | None:
    """``today``/``tomorrow``/a weekday, with an optional ``HH[:MM]`` (default 00:00);
    ``None`` when ``cleaned`` is not such a form. A weekday is the next one whose time is
    still ahead (today's, if it is that day and the time has not passed)."""
    match = _DAY_WORDS.fullmatch(cleaned)
    if match is None:
        return None
    word = match["day"]
    today = now.astimezone(zone).date()
    hour, minute = int(match["hour"] or 0), int(match["minute"] or 0)
    if word == "today":
        return _wall_clock(today, hour, minute, zone, text)
    if word == "tomorrow":
        return _wall_clock(today + timedelta(days=1), hour, minute, zone, text)
    days = [n for n, name in enumerate(_WEEKDAYS) if len(word) >= 3 and name.startswith(word)]
    if not days:
        return None
    ahead = (days[0] - today.weekday()) % 7
    moment = _wall_clock(today + timedelta(days=ahead), hour, minute, zone, text)
    if moment <= now:
        moment = _wall_clock(today + timedelta(days=ahead + 7), hour, minute, zone, text)
    return moment


def parse_when(text: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    """An instant as people type it (see the module doc), as an aware UTC ``datetime``.

    ``now`` is rounded up to the next whole minute, and ``+2h`` counts from there (real
    hours, across a clock change too). Raises ``ValueError`` naming the accepted forms.
    """
    cleaned = " ".join(text.strip().lower().split())
    if cleaned == "now":
        return ceil_minute(now.astimezone(UTC))
    if cleaned.startswith("+"):
        try:
            return ceil_minute(now.astimezone(UTC)) + parse_duration(cleaned[1:])
        except ValueError:
            raise ValueError(f"invalid time {text!r}: {FORMS}") from None
    if cleaned[:1].isalpha() and not cleaned[:4].isdigit():
        moment = _day_words(cleaned, now, zone, text)
        if moment is None:
            raise ValueError(f"invalid time {text!r}: {FORMS}")
        return moment
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"invalid time {text!r}: {FORMS}") from None
    if value.tzinfo is None:
        return _wall_clock(value.date(), value.hour, value.minute, zone, text).replace(
            second=value.second, microsecond=value.microsecond
        )
    return value.astimezone(UTC)


def parse_instant(text: str, now: datetime, zone: tzinfo = UTC) -> datetime:
    """``parse_when`` (kept under its old name for the commands that used it)."""
    return parse_when(text, now, zone)


# -- the display zone -------------------------------------------------------------------------

_chosen: list[tzinfo] = []


def load_zone(name: str) -> tzinfo:
    """A zone by IANA name (``Europe/Berlin``) or ``UTC``; ``ValueError`` when unknown."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name.strip().upper() in UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name like Europe/Berlin or UTC"
        ) from None


def local_zone() -> tzinfo:
    """This machine's zone: ``$TZ``, else ``/etc/localtime``, else its current UTC offset."""
    from zoneinfo import ZoneInfo

    named = os.environ.get("TZ", "").lstrip(":")
    if named:
        try:
            return load_zone(named)
        except ValueError:
            pass
    try:
        key = _localtime_key()
        if key.upper() in UTC_NAMES:
            return UTC
        with Path("/etc/localtime").open("rb") as file:
            return ZoneInfo.from_file(file, key=key)
    except (OSError, ValueError):
        return datetime.now().astimezone().tzinfo or UTC


def _localtime_key() -> str:
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return "local"
    return target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else "local"


def set_display_zone(name: str | None, use_env: bool = True) -> tzinfo:
    """Choose the zone of this command line: ``name``, else ``$PROCPLAN_TZ`` (unless not
    ``use_env``), else local. ``ValueError`` for an unknown zone."""
    wanted = name or (os.environ.get(ZONE_ENV) if use_env else None)
    zone = load_zone(wanted) if wanted else local_zone()
    _chosen[:] = [zone]
    return zone


def display_zone() -> tzinfo:
    """The zone times are typed and shown in (chosen once per command line)."""
    if not _chosen:
        try:
            set_display_zone(None)
        except ValueError:  # a bad $PROCPLAN_TZ: the app's callback has warned about it
            set_display_zone(None, use_env=False)
    return _chosen[0]


def zone_name(zone: tzinfo | None = None) -> str:
    """``UTC``, ``Europe/Berlin`` or ``local``: how tables name the zone of their times."""
    zone = zone or display_zone()
    if zone is UTC:
        return "UTC"
    key = getattr(zone, "key", None)
    return str(key) if key else (zone.tzname(None) or "local")
