"""Notification channels (issue #14, ADR 0012): who gets which notes, through which URL.

A channel is a user's (``user`` set) or the cluster's (``user`` None; admins manage those).
Which channels a note goes to (``recipients``): the recipient's own channels, and the
cluster's, that subscribe to its kind; a note for the admins (``user_pk`` NULL) goes to the
cluster's channels and to the admins' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, or_, select, update

from procplan.core.errors import NotFound
from procplan.core.notes import NoteKind, parse_kinds
from procplan.core.timeutil import Instant
from procplan.store.engine import Store
from procplan.store.tables import notify_channels, users

__all__ = ["Channel", "ChannelStore", "recipients"]

ALL_EVENTS = "*"


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel as stored; ``url`` holds secrets (never shown back whole)."""

    id: int
    user: str | None
    url: str
    events: str
    label: str
    created_at: Instant
    last_sent_at: Instant | None = None
    last_error: str | None = None
    last_error_at: Instant | None = None

    def wants(self, kind: NoteKind) -> bool:
        kinds = parse_kinds(self.events)
        return kinds is None or kind in kinds


_OWNER = notify_channels.outerjoin(users, users.c.pk == notify_channels.c.user_pk)
_SELECT = select(
    notify_channels.c.pk, users.c.name, notify_channels.c.url, notify_channels.c.events,
    notify_channels.c.label, notify_channels.c.created_at, notify_channels.c.last_sent_at,
    notify_channels.c.last_error, notify_channels.c.last_error_at,
).select_from(_OWNER)  # fmt: skip


def _channel(row: Sequence[object]) -> Channel:
    return Channel(*row)  # type: ignore[arg-type]


class ChannelStore:
    """Channels in the database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, user: str | None, url: str, events: str, label: str, now: Instant) -> Channel:
        with self.store.write() as conn:
            user_pk = None if user is None else _user_pk(conn, user)
            pk = conn.execute(
                insert(notify_channels)
                .values(user_pk=user_pk, url=url, events=events, label=label, created_at=now)
                .returning(notify_channels.c.pk)
            ).scalar_one()
            return _channel(conn.execute(_SELECT.where(notify_channels.c.pk == pk)).one())

    def get(self, channel_id: int) -> Channel:
        with self.store.read() as conn:
            row = conn.execute(_SELECT.where(notify_channels.c.pk == channel_id)).first()
        if row is None:
            raise NotFound(f"no notification channel {channel_id}")
        return _channel(row)

    def list(self, user: str | None, *, cluster: bool) -> list[Channel]:
        """``user``'s channels (every user's when ``None``), with the cluster's when asked."""
        query = _SELECT.order_by(notify_channels.c.pk)
        if user is not None:
            mine = users.c.name == user
            query = query.where(or_(mine, notify_channels.c.user_pk.is_(None)) if cluster else mine)
        elif not cluster:
            query = query.where(notify_channels.c.user_pk.is_not(None))
        with self.store.read() as conn:
            return [_channel(row) for row in conn.execute(query)]

    def remove(self, channel_id: int) -> None:
        with self.store.write() as conn:
            gone = conn.execute(delete(notify_channels).where(notify_channels.c.pk == channel_id))
            if gone.rowcount == 0:
                raise NotFound(f"no notification channel {channel_id}")

    def note_result(self, channel_id: int, now: Instant, error: str | None) -> None:
        """Remember the last delivery's outcome (what ``procplan notify list`` shows)."""
        values: dict[str, object] = (
            {"last_sent_at": now} if error is None else {"last_error": error, "last_error_at": now}
        )
        with self.store.write() as conn:
            conn.execute(
                update(notify_channels).where(notify_channels.c.pk == channel_id).values(**values)
            )


def recipients(conn: Connection, kind: NoteKind, user_pk: int | None) -> list[Channel]:
    """The channels a note of ``kind`` for ``user_pk`` (None: the admins) goes to."""
    if user_pk is None:
        admins = select(users.c.pk).where(users.c.role == "admin")
        who = or_(notify_channels.c.user_pk.is_(None), notify_channels.c.user_pk.in_(admins))
    else:
        who = or_(notify_channels.c.user_pk.is_(None), notify_channels.c.user_pk == user_pk)
    rows = conn.execute(_SELECT.where(who).order_by(notify_channels.c.pk))
    return [c for c in map(_channel, rows) if c.wants(kind)]


def _user_pk(conn: Connection, user: str) -> int:
    pk = conn.execute(select(users.c.pk).where(users.c.name == user)).scalar()
    if pk is None:
        raise NotFound(f"no user '{user}'")
    return int(pk)
