"""The transactional outbox (issue #14, ADR 0012): notes written with the change that causes
them, and their deliveries to channels, for the one sender to work through.

``enqueue(conn, note, now)`` runs inside the caller's write transaction, so a note exists
exactly when its change was committed; its key makes it idempotent (``ON CONFLICT DO
NOTHING``). The sender (``service.notify``) reads what is due, records each channel's attempt
and marks a note done when every delivery ended. Deliveries are at least once: a sender that
dies between sending and recording sends again after a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, insert, select, update

from procplan.core.notes import ADMIN_KINDS, Note, NoteKind
from procplan.core.timeutil import Instant
from procplan.store.channels_repo import recipients
from procplan.store.tables import notify_channels, notify_deliveries, outbox, upsert_insert, users

__all__ = [
    "Pending",
    "claim_delivery",
    "due_notes",
    "enqueue",
    "finish_note",
    "listener",
    "record",
]

MAX_ATTEMPTS = 8
_ANY_CHANNEL = select(notify_channels.c.pk).limit(1)
BACKOFF_S = (5, 15, 60, 300, 900, 1800, 3600)  # after the 1st, 2nd, ... failed attempt


@dataclass(frozen=True, slots=True)
class Pending:
    """A note not yet done: its row key, kind, recipient's user key (``None``: admins)."""

    pk: int
    key: str
    kind: NoteKind
    user_pk: int | None
    subject: str
    body: str
    created_at: Instant


def enqueue(conn: Connection, note: Note, now: Instant) -> None:
    """Write ``note`` in the caller's transaction, once per key. A note nobody could receive
    (no channel of its recipient or of the cluster subscribes to its kind) is not kept: the
    outbox holds only work for the sender (and a cluster without channels pays one tiny
    query per event)."""
    listening, user_pk = listener(conn, note.kind, note.user)
    if not listening:
        return
    row = {
        "key": note.key[:200], "kind": note.kind.value, "user_pk": user_pk,
        "subject": note.subject, "body": note.body, "created_at": now, "done_at": None,
    }  # fmt: skip
    statement = upsert_insert(conn.dialect.name, outbox).values(row)
    conn.execute(statement.on_conflict_do_nothing(index_elements=["key"]))


def listener(conn: Connection, kind: NoteKind, user: str | None) -> tuple[bool, int | None]:
    """Whether a note of ``kind`` for ``user`` would reach any channel, and the recipient's
    user key (``None``: the admins). Callers whose note costs work to write (a job's log
    tail) ask first."""
    if conn.execute(_ANY_CHANNEL).first() is None:
        return False, None
    user_pk: int | None = None
    if user is not None and kind not in ADMIN_KINDS:
        user_pk = conn.execute(select(users.c.pk).where(users.c.name == user)).scalar()
        if user_pk is None:
            return False, None
    return bool(recipients(conn, kind, user_pk)), user_pk


def due_notes(conn: Connection, limit: int = 100) -> list[Pending]:
    """Notes not done yet, oldest first."""
    rows = conn.execute(
        select(
            outbox.c.pk, outbox.c.key, outbox.c.kind, outbox.c.user_pk, outbox.c.subject,
            outbox.c.body, outbox.c.created_at,
        )
        .where(outbox.c.done_at.is_(None))
        .order_by(outbox.c.pk)
        .limit(limit)
    ).all()  # fmt: skip
    return [Pending(r[0], r[1], NoteKind(r[2]), r[3], r[4], r[5], r[6]) for r in rows]


def claim_delivery(conn: Connection, note_pk: int, channel_pk: int, now: Instant) -> bool:
    """Whether the note should go to the channel now: not sent yet, not given up, and its
    backoff over (a first attempt creates the row)."""
    row = conn.execute(
        select(
            notify_deliveries.c.sent_at, notify_deliveries.c.attempts, notify_deliveries.c.next_at
        ).where(
            and_(
                notify_deliveries.c.outbox_pk == note_pk,
                notify_deliveries.c.channel_pk == channel_pk,
            )
        )
    ).first()
    if row is None:
        conn.execute(
            insert(notify_deliveries).values(
                outbox_pk=note_pk, channel_pk=channel_pk, attempts=0, next_at=now
            )
        )
        return True
    sent_at, attempts, next_at = row
    return sent_at is None and attempts < MAX_ATTEMPTS and next_at <= now


def record(
    conn: Connection, note_pk: int, channel_pk: int, now: Instant, error: str | None
) -> None:
    """One attempt's outcome: sent, or failed with ``error`` (retried after a backoff)."""
    where = and_(
        notify_deliveries.c.outbox_pk == note_pk, notify_deliveries.c.channel_pk == channel_pk
    )
    attempts = conn.execute(select(notify_deliveries.c.attempts).where(where)).scalar() or 0
    values: dict[str, object] = {"attempts": attempts + 1, "error": error}
    if error is None:
        values["sent_at"] = now
    else:
        values["next_at"] = now + BACKOFF_S[min(attempts, len(BACKOFF_S) - 1)]
    conn.execute(update(notify_deliveries).where(where).values(**values))


def finish_note(conn: Connection, note_pk: int, channel_pks: Sequence[int], now: Instant) -> bool:
    """Mark the note done when each of its channels' deliveries ended (sent or given up);
    whether it is done."""
    if channel_pks:
        open_ = conn.execute(
            select(func.count())
            .select_from(notify_deliveries)
            .where(notify_deliveries.c.outbox_pk == note_pk)
            .where(notify_deliveries.c.channel_pk.in_(channel_pks))
            .where(notify_deliveries.c.sent_at.is_(None))
            .where(notify_deliveries.c.attempts < MAX_ATTEMPTS)
        ).scalar()
        started = conn.execute(
            select(func.count())
            .select_from(notify_deliveries)
            .where(notify_deliveries.c.outbox_pk == note_pk)
            .where(notify_deliveries.c.channel_pk.in_(channel_pks))
        ).scalar()
        if open_ or started != len(channel_pks):
            return False
    conn.execute(update(outbox).where(outbox.c.pk == note_pk).values(done_at=now))
    return True
