"""Ledger rule 4: a booking may not take GPUs another user's time-limited job holds; an
open-ended job or the booking owner's own job does not stand in the way. Booking-vs-booking
checks (rule 1) read booking claims only."""

from __future__ import annotations

import pytest
from jobs_kit import HOUR, NOW

from procplan.core.errors import Conflict
from procplan.core.invariants import find_overlaps
from procplan.core.jobs import OPEN_END, Job, Plan, Start
from procplan.core.model import Booking, BookingRequest
from procplan.core.timeutil import to_iso
from procplan.service.bookings import BookingService
from procplan.store.jobs_repo import JobStore


def running(js: JobStore, user: str, gpus: tuple[str, ...], end: int = OPEN_END) -> Job:
    """A job of ``user`` running on node-a's ``gpus`` from NOW until ``end``."""
    [queued] = js.submit([Job(id=0, user=user, gpu_count=len(gpus))], NOW)
    result = js.apply(Plan(starts=(Start(queued.id, ("node-a",), gpus, end),)), NOW, 30)
    assert result.started, result
    return result.started[0]


def book(
    bookings: BookingService,
    user: str,
    start: int,
    end: int,
    gpus: tuple[str, ...] | None = ("node-a-gpu0",),
    count: int | None = None,
) -> Booking:
    req = BookingRequest("node-a", start, end, user, "XX", gpu_ids=gpus, gpu_count=count)
    return bookings.create(req, whole_hours=False)


def test_booking_over_another_users_job_is_refused(js: JobStore, bookings: BookingService) -> None:
    job = running(js, "ada", ("node-a-gpu0",), end=NOW + 2 * HOUR)
    with pytest.raises(Conflict) as err:
        book(bookings, "bob", NOW + HOUR, NOW + 3 * HOUR)
    assert err.value.code == "job_conflict"
    assert err.value.message == (
        f"GPU 'node-a-gpu0' is in use by job {job.id} until {to_iso(NOW + 2 * HOUR)}"
    )
    # Once the job's claim has ended the window is free.
    assert book(bookings, "bob", NOW + 2 * HOUR, NOW + 3 * HOUR).user == "bob"


def test_the_job_owner_may_book_over_their_own_job(js: JobStore, bookings: BookingService) -> None:
    running(js, "ada", ("node-a-gpu0",), end=NOW + 2 * HOUR)
    assert book(bookings, "ada", NOW + HOUR, NOW + 3 * HOUR).user == "ada"


def test_open_ended_jobs_do_not_block_bookings(js: JobStore, bookings: BookingService) -> None:
    running(js, "ada", ("node-a-gpu0",))
    assert book(bookings, "bob", NOW + HOUR, NOW + 2 * HOUR).user == "bob"


def test_a_finished_job_does_not_block(js: JobStore, bookings: BookingService) -> None:
    job = running(js, "ada", ("node-a-gpu0",), end=NOW + 2 * HOUR)
    js.finish(job.id, job.state.COMPLETED, NOW + 60)
    assert book(bookings, "bob", NOW + HOUR, NOW + 2 * HOUR).user == "bob"


def test_booking_by_count_steps_around_jobs(js: JobStore, bookings: BookingService) -> None:
    running(js, "ada", ("node-a-gpu0", "node-a-gpu1"), end=NOW + 2 * HOUR)
    chosen = book(bookings, "bob", NOW + HOUR, NOW + 2 * HOUR, gpus=None, count=2)
    assert chosen.gpu_ids == ("node-a-gpu2", "node-a-gpu3")
    with pytest.raises(Conflict) as err:
        book(bookings, "cy", NOW + HOUR, NOW + 2 * HOUR, gpus=None, count=1)
    assert err.value.code == "no_free_gpus"


def test_extending_a_booking_over_a_job_is_refused(js: JobStore, bookings: BookingService) -> None:
    booking = book(bookings, "bob", NOW, NOW + HOUR, gpus=("node-a-gpu1",))
    # ada's job starts on the GPU after bob's booking (a booking is not "foreign" after it).
    [queued] = js.submit([Job(id=0, user="ada")], NOW)
    start = Start(queued.id, ("node-a",), ("node-a-gpu1",), NOW + 3 * HOUR)
    assert js.apply(Plan(starts=(start,)), NOW + HOUR, 30).started
    with pytest.raises(Conflict) as err:
        bookings.change_end(booking.id, NOW + 2 * HOUR)
    assert err.value.code == "job_conflict"
    assert bookings.change_end(booking.id, NOW + HOUR - 60).end == NOW + HOUR - 60


def test_booking_checks_ignore_job_claims_and_the_audit_reads_bookings_only(
    js: JobStore, bookings: BookingService
) -> None:
    running(js, "ada", ("node-a-gpu0",), end=NOW + 2 * HOUR)
    own = book(bookings, "ada", NOW, NOW + HOUR)  # over ada's own job: legal
    with pytest.raises(Conflict) as err:
        book(bookings, "ada", NOW + HOUR - 60, NOW + HOUR + 60)
    assert err.value.code == "gpu_conflict"  # rule 1 still holds between bookings
    claims = bookings.bookings.all_active_claims()
    assert {c.booking_id for c in claims} == {own.id}
    assert find_overlaps(claims) == []
