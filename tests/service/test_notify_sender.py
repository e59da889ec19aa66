"""Notifications through the outbox (issue #14, ADR 0012), on a real store with a fake clock
and a fake transport (``Postbox``, which records what it was asked to send and fails on
request): notes are written with the change that causes them, once per event, reach the
channels that want them, are retried with backoff and given up in the end, and a channel's
last outcome is kept for ``procplan notify list``."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from procplan.core.identity import Principal, Role, Via
from procplan.core.jobs import JobKind, JobRequest, JobState
from procplan.core.model import BookingRequest
from procplan.core.notes import NoteKind, job_started, node_changed, when_text
from procplan.server import Composed
from procplan.service.notify import NoteSender, NotifyService
from procplan.store.outbox import MAX_ATTEMPTS, enqueue
from procplan.testing import FakeClock

NODE = "node-a"
HOOK = "json://127.0.0.1:9/hook"


@dataclass
class Postbox:
    """A fake transport: what was sent, and how many of the next sends fail."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)
    failures: int = 0

    def __call__(self, url: str, title: str, body: str) -> str | None:
        if self.failures:
            self.failures -= 1
            return "connection refused"
        self.sent.append((url, title, body))
        return None

    def titles(self) -> list[str]:
        return [title for _, title, _ in self.sent]


def person(name: str, role: Role = Role.USER) -> Principal:
    return Principal(name, role, Via.TOKEN)


@pytest.fixture
def postbox() -> Postbox:
    return Postbox()


@pytest.fixture
def service(composed: Composed, postbox: Postbox) -> NotifyService:
    for name in ("alice", "bob", "root"):
        composed.accounts.store.save_user(name, composed.jobs.clock.now())
    return NotifyService(composed.store, composed.jobs.clock, postbox)


@pytest.fixture
def sender(composed: Composed, postbox: Postbox) -> NoteSender:
    clock = composed.jobs.clock
    return NoteSender(
        composed.store, clock, lambda: True, composed.bookings.near, postbox, lead_s=900
    )


def run_job(composed: Composed, user: str, state: JobState, code: int) -> int:
    request = JobRequest(user=user, kind=JobKind.BATCH, gpu_count=1, node_id=NODE,
                         time_limit_s=600, command=("true",))  # fmt: skip
    job = composed.jobs.submit(request)[0]
    composed.scheduler.run_once()
    composed.jobs.finish(job.id, state, code)
    return job.id


def test_a_job_tells_its_owner_it_started_and_failed(
    composed: Composed, service: NotifyService, sender: NoteSender, postbox: Postbox
) -> None:
    service.add(person("alice"), HOOK, "job", "")
    service.add(person("bob"), HOOK, "*", "")  # bob's channel hears nothing of alice's jobs
    job_id = run_job(composed, "alice", JobState.FAILED, 3)
    assert sender.run_once() == 2
    assert postbox.titles() == [f"Job {job_id} started", f"Job {job_id} failed (exit code 3)"]
    assert sender.run_once() == 0  # each once


def test_a_job_end_carries_its_efficiency_line(
    composed: Composed, service: NotifyService, postbox: Postbox
) -> None:
    clock = composed.jobs.clock
    sender = NoteSender(
        composed.store, clock, lambda: True, composed.bookings.near, postbox,
        describe_job=lambda job_id: f"Efficiency: of job {job_id}",
    )  # fmt: skip
    service.add(person("alice"), HOOK, "job.failed", "")
    failed = run_job(composed, "alice", JobState.FAILED, 2)
    sender.run_once()
    ((_, _, body),) = postbox.sent
    assert body.splitlines()[:2] == [
        f"Job {failed} failed (exit code 2).",
        f"Efficiency: of job {failed}",
    ]


def test_events_filter_what_a_channel_gets(
    composed: Composed, service: NotifyService, sender: NoteSender, postbox: Postbox
) -> None:
    service.add(person("alice"), HOOK, "job.failed", "")
    run_job(composed, "alice", JobState.COMPLETED, 0)
    failed = run_job(composed, "alice", JobState.FAILED, 1)
    sender.run_once()
    assert postbox.titles() == [f"Job {failed} failed (exit code 1)"]


def test_nothing_is_kept_for_nobody(composed: Composed, sender: NoteSender) -> None:
    run_job(composed, "alice", JobState.COMPLETED, 0)
    with composed.store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM outbox").scalar() == 0


def test_the_same_event_is_written_once(composed: Composed, service: NotifyService) -> None:
    service.add(person("alice"), HOOK, "*", "")
    job_id = run_job(composed, "alice", JobState.COMPLETED, 0)
    job = composed.jobs.get(job_id)
    with composed.store.write() as conn:
        enqueue(conn, job_started(job, 0), 0)  # the started note again, as a retry would
        enqueue(conn, job_started(job, 0), 0)
    with composed.store.read() as conn:
        kinds = [r[0] for r in conn.exec_driver_sql("SELECT kind FROM outbox ORDER BY pk")]
    assert kinds == [NoteKind.JOB_STARTED.value, NoteKind.JOB_FINISHED.value]


def test_a_failed_delivery_is_retried_after_a_backoff_and_shown(
    composed: Composed, service: NotifyService, sender: NoteSender, postbox: Postbox
) -> None:
    clock: FakeClock = composed.jobs.clock  # type: ignore[assignment]
    channel = service.add(person("alice"), HOOK, "job.finished", "")
    postbox.failures = 1
    run_job(composed, "alice", JobState.COMPLETED, 0)
    assert sender.run_once() == 0
    (listed,) = service.list(person("alice"))
    assert listed.last_error == "connection refused" and listed.last_sent_at is None
    assert sender.run_once() == 0  # still backing off
    clock.advance(5)
    assert sender.run_once() == 1
    (listed,) = service.list(person("alice"))
    assert listed.id == channel.id and listed.last_sent_at == clock.now()


def test_a_channel_that_keeps_failing_is_given_up(
    composed: Composed, service: NotifyService, sender: NoteSender, postbox: Postbox
) -> None:
    clock: FakeClock = composed.jobs.clock  # type: ignore[assignment]
    service.add(person("alice"), HOOK, "job.finished", "")
    postbox.failures = MAX_ATTEMPTS + 5
    run_job(composed, "alice", JobState.COMPLETED, 0)
    for _ in range(MAX_ATTEMPTS + 2):
        sender.run_once()
        clock.advance(3600)
    with composed.store.read() as conn:
        done = conn.exec_driver_sql("SELECT done_at FROM outbox").scalar()
        tries = conn.exec_driver_sql("SELECT attempts FROM notify_deliveries").scalar()
    assert done is not None and tries == MAX_ATTEMPTS
    assert postbox.sent == []


def test_admin_notes_reach_cluster_channels_and_admins(
    composed: Composed, service: NotifyService, sender: NoteSender, postbox: Postbox
) -> None:
    composed.accounts.store.save_user("root", composed.jobs.clock.now(), role="admin")
    lab = service.add(person("root", Role.ADMIN), "json://127.0.0.1:9/lab", "*", "", cluster=True)
    assert lab.user is None and lab.events == "node.offline,node.online"
    service.add(person("root", Role.ADMIN), HOOK, "node", "")
    service.add(person("alice"), "json://127.0.0.1:9/alice", "*", "")  # not an admin
    with pytest.raises(Exception, match="only admins"):
        service.add(person("alice"), HOOK, "*", "", cluster=True)
    with composed.store.write() as conn:
        enqueue(conn, node_changed(NODE, False, 100), 100)
    sender.run_once()
    assert sorted(url for url, _, _ in postbox.sent) == ["json://127.0.0.1:9/hook",
                                                         "json://127.0.0.1:9/lab"]  # fmt: skip


def test_bookings_that_start_or_end_soon_tell_their_owner(
    composed: Composed, service: NotifyService, sender: NoteSender, postbox: Postbox
) -> None:
    clock: FakeClock = composed.jobs.clock  # type: ignore[assignment]
    service.add(person("alice"), HOOK, "booking", "")
    now = clock.now()
    request = BookingRequest(NODE, now + 3600, now + 7200, "alice", "train", gpu_count=1)
    booking = composed.bookings.create(request, whole_hours=False)
    sender.run_once()
    assert postbox.titles() == []  # an hour away: not yet
    clock.advance(3600 - 600)
    sender.run_once()
    clock.advance(60)
    sender.run_once()  # the same start: said once
    assert postbox.titles() == [f"Booking {booking.id} starts in 10 min"]
    clock.advance(7200 - 120 - 3060)
    sender.run_once()
    assert postbox.titles()[-1] == f"Booking {booking.id} ends in 2 min"


def test_other_peoples_channels_are_not_yours(service: NotifyService) -> None:
    mine = service.add(person("alice"), HOOK, "*", "")
    with pytest.raises(Exception, match="not yours"):
        service.remove(person("bob"), mine.id)
    assert [c.id for c in service.list(person("bob"))] == []
    service.remove(person("root", Role.ADMIN), mine.id)
    assert service.list(person("alice")) == []


def test_a_queued_job_hears_when_its_estimate_moves(
    composed: Composed, service: NotifyService, sender: NoteSender, postbox: Postbox
) -> None:
    service.add(person("alice"), HOOK, "job.estimate", "")
    width = len(composed.bookings.node(NODE).gpus)

    def submit(user: str, priority: int) -> int:
        request = JobRequest(user=user, kind=JobKind.BATCH, gpu_count=width, node_id=NODE,
                             time_limit_s=3600, priority=priority, command=("true",))  # fmt: skip
        return composed.jobs.submit(request)[0].id

    submit("bob", 1000)  # runs for an hour
    composed.scheduler.run_once()
    waiting = submit("alice", 100)
    composed.scheduler.run_once()
    assert sender.run_once() == 0  # a first estimate is no move
    submit("bob", 1000)  # goes ahead of alice's job: an hour later
    composed.scheduler.run_once()
    sender.run_once()
    moved_to = composed.jobs.get(waiting).estimated_start or 0
    assert postbox.titles() == [f"Job {waiting} now expected to start at {when_text(moved_to)}"]
