"""The in-process event bus: routing by kind, every kind, unsubscribe, a raising subscriber
that breaks nobody, and which services publish what after their commits."""

from __future__ import annotations

import logging

import pytest

from procplan.core.bookings import BookingLimits
from procplan.core.jobs import JobKind, JobRequest, Tenant
from procplan.core.model import BookingRequest
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.service.events import ALL, Event, EventBus
from procplan.service.jobs import JobService, JobSettings
from procplan.store.engine import Store
from procplan.testing import FakeClock

NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.seen.append(event)


def test_a_subscriber_hears_only_its_kinds() -> None:
    bus = EventBus()
    jobs, ledger, everything = Recorder(), Recorder(), Recorder()
    bus.subscribe(Event.JOBS_CHANGED, jobs)
    bus.subscribe({Event.LEDGER_CHANGED, Event.NODES_CHANGED}, ledger)
    bus.subscribe(None, everything)
    for event in (Event.JOBS_CHANGED, Event.LEDGER_CHANGED, Event.PLAN_APPLIED):
        bus.publish(event)
    assert jobs.seen == [Event.JOBS_CHANGED]
    assert ledger.seen == [Event.LEDGER_CHANGED]
    assert everything.seen == [Event.JOBS_CHANGED, Event.LEDGER_CHANGED, Event.PLAN_APPLIED]
    assert bus.subscribers(Event.PLAN_APPLIED) == 1
    assert bus.subscribers(Event.NODES_CHANGED) == 2


def test_subscribers_are_called_in_order_and_can_leave() -> None:
    bus = EventBus()
    order: list[str] = []
    bus.subscribe(ALL, lambda _: order.append("first"))
    leave = bus.subscribe(ALL, lambda _: order.append("second"))
    bus.publish(Event.TENANTS_CHANGED)
    leave()
    leave()  # twice is harmless
    bus.publish(Event.TENANTS_CHANGED)
    assert order == ["first", "second", "first"]


def test_publishing_with_no_subscribers_is_a_no_op() -> None:
    EventBus().publish(Event.JOBS_CHANGED)


def test_a_raising_subscriber_is_logged_and_breaks_no_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    before, after = Recorder(), Recorder()

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(ALL, before)
    bus.subscribe(ALL, broken)
    bus.subscribe(ALL, after)
    with caplog.at_level(logging.ERROR, logger="procplan.events"):
        bus.publish(Event.JOBS_CHANGED)  # does not raise into the publisher
        bus.publish(Event.JOBS_CHANGED)
    assert before.seen == after.seen == [Event.JOBS_CHANGED] * 2
    failures = [r for r in caplog.records if "jobs_changed" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None


def test_services_publish_after_their_writes(store: Store) -> None:
    bus = EventBus()
    heard = Recorder()
    bus.subscribe(ALL, heard)
    clock = FakeClock(NOW)
    bookings = BookingService(store, clock, BookingLimits(), bus)
    bookings.replace_topology(demo_topology())
    assert heard.seen == [Event.NODES_CHANGED]

    jobs = JobService(store, clock, bookings, JobSettings(), bus)
    heard.seen.clear()
    jobs.create_tenant(Tenant(id="lab"))
    job = jobs.submit(JobRequest(user="ada", gpu_count=1, kind=JobKind.INTERACTIVE))[0]
    jobs.heartbeat(job.id)  # a renewed lease plans nothing: no event
    jobs.cancel(job.id)
    node = demo_topology().nodes[0]
    booking = bookings.create(
        BookingRequest(
            node_id=node.id, start=NOW + 3600, end=NOW + 7200, user="ada", label="x", gpu_count=1
        ),
        whole_hours=False,
    )
    bookings.cancel(booking.id)
    assert heard.seen == [
        Event.TENANTS_CHANGED,
        Event.JOBS_CHANGED,
        Event.JOBS_CHANGED,
        Event.LEDGER_CHANGED,
        Event.LEDGER_CHANGED,
    ]
