"""Notifications (issue #14, ADR 0012): channels people manage, and the one sender.

Notes are written to the outbox by the changes that cause them (``store.outbox.enqueue``). The
sender runs in every server process but works only in the one holding the cycle lock (the
leader): it wakes every ``poll_s``, delivers what is due through apprise (e-mail, Slack,
Matrix, Mattermost, Teams, Discord, ntfy, JSON webhooks, ...), records each channel's
outcome (retried with backoff, at least once), and writes the notes that time alone causes
(a booking that starts or ends within ``lead_s``). Delivery never runs in a request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from procplan.core.errors import Forbidden, InvalidRequest
from procplan.core.identity import Principal
from procplan.core.jobs import Job, Notice
from procplan.core.model import Booking
from procplan.core.notes import (
    ADMIN_KINDS,
    NoteKind,
    booking_soon,
    job_preempt_warning,
    parse_kinds,
)
from procplan.core.timeutil import Instant
from procplan.service.clock import Clock
from procplan.store.channels_repo import Channel, ChannelStore, recipients
from procplan.store.engine import Store
from procplan.store.outbox import (
    Pending,
    claim_delivery,
    due_notes,
    enqueue,
    finish_note,
    record,
)

LOG = logging.getLogger("procplan.notify")

__all__ = ["Deliver", "NoteSender", "NotifyService", "apprise_deliver", "preemption_warner"]

# (url, title, body) -> None when delivered, else the error in words.
Deliver = Callable[[str, str, str], str | None]
MAX_ERROR = 500
JOB_ENDS = (NoteKind.JOB_FINISHED, NoteKind.JOB_FAILED)
MAX_REMEMBERED = 10_000
MAX_URL = 2000


def apprise_deliver(url: str, title: str, body: str) -> str | None:
    """Send one message through apprise; its log lines make the error (without the URL,
    which may hold a secret)."""
    import apprise

    sender = apprise.Apprise()
    if not sender.add(url):
        return "not a notification URL apprise understands"
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as logs:  # type: ignore[no-untyped-call]
        sent = sender.notify(title=title, body=body)
    if sent:
        return None
    text = logs.getvalue().replace(url, "<url>").strip() or "delivery failed"
    return text[-MAX_ERROR:]


def check_url(url: str) -> None:
    """``InvalidRequest`` unless apprise can send to ``url``."""
    import apprise

    if len(url) > MAX_URL or apprise.Apprise.instantiate(url) is None:
        raise InvalidRequest(
            "not a notification URL apprise understands (e.g. mailto://, json://host/path, "
            "slack://, ntfy://; see https://github.com/caronc/apprise/wiki)"
        )


class NotifyService:
    """Channels: add, list, remove, test — each user their own, admins the cluster's too."""

    def __init__(self, store: Store, clock: Clock, deliver: Deliver = apprise_deliver) -> None:
        self.channels = ChannelStore(store)
        self.clock = clock
        self.deliver = deliver

    def add(
        self, who: Principal, url: str, events: str, label: str, *, cluster: bool = False
    ) -> Channel:
        if cluster and not who.is_admin:
            raise Forbidden("only admins set cluster-wide channels")
        if who.name is None:
            raise Forbidden("sign in to add a notification channel")
        try:
            kinds = parse_kinds(events)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        check_url(url)
        if cluster and kinds is None:
            events = ",".join(sorted(k.value for k in ADMIN_KINDS))  # a lab channel: nodes
        normal = "*" if kinds is None and not cluster else events.replace(" ", "")
        return self.channels.add(
            None if cluster else who.name, url, normal, label, self.clock.now()
        )

    def list(self, who: Principal) -> list[Channel]:
        """Yours; an admin sees every channel, the cluster's included."""
        if who.is_admin:
            return self.channels.list(None, cluster=True)
        return self.channels.list(who.name, cluster=False)

    def owned(self, who: Principal, channel_id: int) -> Channel:
        channel = self.channels.get(channel_id)
        if not who.is_admin and channel.user != who.name:
            raise Forbidden(f"channel {channel_id} is not yours")
        return channel

    def remove(self, who: Principal, channel_id: int) -> Channel:
        channel = self.owned(who, channel_id)
        self.channels.remove(channel_id)
        return channel

    def test(self, who: Principal, channel_id: int) -> tuple[Channel, str | None]:
        """Send a test message now (the person asking waits for the answer); the outcome is
        the channel's last result too."""
        channel = self.owned(who, channel_id)
        error = self.deliver(
            channel.url, "ProcPlan test", f"A test of notification channel {channel_id}."
        )
        self.channels.note_result(channel_id, self.clock.now(), error)
        return self.channels.get(channel_id), error


class NoteSender:
    """The outbox's one sender (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        is_leader: Callable[[], bool],
        bookings_near: Callable[[Instant, Instant], Sequence[Booking]],
        deliver: Deliver = apprise_deliver,
        *,
        poll_s: float = 0.5,
        lead_s: int = 15 * 60,
        describe_job: Callable[[int], str | None] | None = None,
    ) -> None:
        self.store, self.clock, self.is_leader = store, clock, is_leader
        self.bookings_near = bookings_near
        self.deliver = deliver
        self.channels = ChannelStore(store)
        self.poll_s, self.lead_s = poll_s, lead_s
        self.describe_job = describe_job  # a job's efficiency line (``UsageService``)
        # Keys of the time-caused notes this sender already wrote: a booking stays "soon" for
        # many passes, and writing its note again each pass was a write transaction per pass.
        self.written: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- one pass ------------------------------------------------------------------------

    def run_once(self) -> int:
        """Write the notes time causes, deliver what is due; how many deliveries succeeded."""
        self.scan_bookings()
        return self.send_due()

    def scan_bookings(self) -> None:
        """Bookings that start or end within ``lead_s``: their owners' notes (once each: the
        key names the booking and the instant)."""
        now = self.clock.now()
        horizon = now + self.lead_s
        near = [b for b in self.bookings_near(now, horizon + 1) if b.is_active]
        notes = []
        for booking in near:
            if now < booking.start <= horizon:
                notes.append(booking_soon(booking, True, _minutes(booking.start - now)))
            elif booking.start <= now < booking.end <= horizon:
                notes.append(booking_soon(booking, False, _minutes(booking.end - now)))
        notes = [note for note in notes if note.key not in self.written]
        if notes:
            with self.store.write() as conn:
                for note in notes:
                    enqueue(conn, note, now)
            if len(self.written) > MAX_REMEMBERED:
                self.written.clear()
            self.written.update(note.key for note in notes)

    def send_due(self) -> int:
        sent = 0
        with self.store.read() as conn:
            due = due_notes(conn)
        for note in due:
            now = self.clock.now()
            with self.store.write() as conn:
                channels = recipients(conn, note.kind, note.user_pk)
                todo = [c for c in channels if claim_delivery(conn, note.pk, c.id, now)]
            body = self._body(note) if todo else note.body
            for channel in todo:
                error = self._deliver(channel, note.subject, body)
                with self.store.write() as conn:
                    record(conn, note.pk, channel.id, self.clock.now(), error)
                self.channels.note_result(channel.id, self.clock.now(), error)
                sent += error is None
            with self.store.write() as conn:
                finish_note(conn, note.pk, [c.id for c in channels], self.clock.now())
        return sent

    def _body(self, note: Pending) -> str:
        """A job's end gets its efficiency line, from the GPU history at sending time (the
        history is written behind, so its last seconds may be missing)."""
        if self.describe_job is None or note.kind not in (
            NoteKind.JOB_FINISHED,
            NoteKind.JOB_FAILED,
        ):
            return note.body
        try:
            line = self.describe_job(int(note.key.split(":")[1]))
        except Exception:  # the note goes out without it
            LOG.warning("no efficiency line for note %s", note.key)
            return note.body
        if not line:
            return note.body
        head, _, tail = note.body.partition("\n")
        return f"{head}\n{line}" + (f"\n{tail}" if tail else "")

    def _deliver(self, channel: Channel, subject: str, body: str) -> str | None:
        try:
            return self.deliver(channel.url, subject, body)
        except Exception as exc:  # a broken plugin must not stop the sender
            LOG.warning("notification channel %s: %s", channel.id, type(exc).__name__)
            return f"{type(exc).__name__}: {exc}"[:MAX_ERROR].replace(channel.url, "<url>")

    # ---- the thread ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="procplan-notify", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            if not self.is_leader():
                continue
            try:
                self.run_once()
            except Exception:  # the next pass retries; never let the thread die
                LOG.exception("notification sender pass failed")


def preemption_warner(
    store: Store, clock: Clock, find_job: Callable[[int], Job | None]
) -> Callable[[Sequence[Notice]], None]:
    """What the cycle calls with new warnings of ledger rule 3 (a foreign booking begins on
    a running open-ended job's GPUs): each job's owner gets a note, written in one
    transaction."""

    def warn(notices: Sequence[Notice]) -> None:
        now = clock.now()
        notes = []
        for notice in notices:
            job = find_job(notice.job_id)
            if job is not None:
                notes.append(job_preempt_warning(job, notice.booking_id, notice.at))
        if notes:
            with store.write() as conn:
                for note in notes:
                    enqueue(conn, note, now)

    return warn


def _minutes(seconds: int) -> int:
    return max(1, -(-seconds // 60))


KINDS_HELP = ", ".join(k.value for k in NoteKind)
