"""Usage accounting (issue #14): ``sreport``-, ``sacct``- and ``seff``-like answers.

Reads claims, job starts and busy history buckets (``store.usage_repo``) and hands them to the
pure ``core.usage``, whose docstring holds the rules ("used", "idle", "unbooked"). This layer
validates the request, reads the clock (a report never counts the future: the window is cut at
now) and keeps the busy threshold.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from procplan.core.errors import InvalidRequest, NotFound
from procplan.core.jobs import JobState
from procplan.core.timeutil import DAY, Instant
from procplan.core.usage import By, Efficiency, FinishedJob, Hold, Totals, account, efficiency
from procplan.service.clock import Clock
from procplan.store.engine import Store
from procplan.store.usage_repo import UsageStore

__all__ = [
    "DEFAULT_BUSY_PCT",
    "MAX_WINDOW_DAYS",
    "BookingUsage",
    "JobUsage",
    "Report",
    "UsageService",
    "parse_by",
]

DEFAULT_BUSY_PCT = 5.0
MAX_WINDOW_DAYS = 400  # a year and a bit: hourly history is kept a year by default
MAX_HISTORY_LIMIT = 1000
MAX_DAILY_DAYS = 92  # a quarter of daily bars


@dataclass(frozen=True, slots=True)
class Report:
    """One report: rows per key, their sum, and what it covered. ``until`` is where the
    accounting stopped (``end`` or now, whichever is earlier)."""

    by: By
    start: Instant
    end: Instant
    until: Instant
    threshold_pct: float
    rows: dict[str, Totals]
    total: Totals


@dataclass(frozen=True, slots=True)
class JobUsage:
    """A job's claims (every run) and its efficiency over them, up to now."""

    job_id: int
    claims: list[Hold]
    efficiency: Efficiency
    threshold_pct: float


@dataclass(frozen=True, slots=True)
class BookingUsage:
    """One booking's GPU-seconds booked and used over ``[start, until)`` (``until``: its end
    or now, whichever is earlier)."""

    booking_id: int
    start: Instant
    end: Instant
    until: Instant
    booked_s: int
    used_s: int
    threshold_pct: float


def parse_by(value: str) -> By:
    try:
        return By(value)
    except ValueError:
        raise InvalidRequest(
            f"Unknown grouping '{value[:32]}': use one of user, tenant, node", code="bad_by"
        ) from None


def check_window(start: Instant, end: Instant, max_days: int = MAX_WINDOW_DAYS) -> None:
    if end <= start:
        raise InvalidRequest("end must be after start", code="bad_window")
    if end - start > max_days * DAY:
        raise InvalidRequest(
            f"the window is longer than {max_days} days: report a shorter period",
            code="window_too_long",
        )


def day_starts(start: Instant, end: Instant, zone: ZoneInfo | None) -> list[Instant]:
    """The start of each day that ``[start, end)`` touches: 00:00 UTC, or 00:00 in ``zone``
    (a midnight skipped by a DST change counts from the change)."""
    if zone is None:
        return list(range(start - start % DAY, end, DAY))
    day = datetime.fromtimestamp(start, zone).date()
    starts: list[Instant] = []
    while not starts or starts[-1] < end:
        starts.append(int(datetime.combine(day, time(), zone).timestamp()))
        day += timedelta(days=1)
    return starts[:-1]


class UsageService:
    """Usage reports, per-job efficiency and the list of finished jobs."""

    def __init__(self, store: Store, clock: Clock, busy_pct: float = DEFAULT_BUSY_PCT) -> None:
        self.repo = UsageStore(store)
        self.clock = clock
        self.busy_pct = busy_pct

    def report(self, by: By | str, start: Instant, end: Instant) -> Report:
        """Booked, used, idle, job and unbooked GPU time, jobs and waits per user, tenant or
        node over ``[start, end)``, counted up to now."""
        by = parse_by(by) if isinstance(by, str) else by
        check_window(start, end)
        until = max(min(end, self.clock.now()), start)
        return self._reports(by, [(start, end)], until)[0]

    def daily(
        self, by: By | str, start: Instant, end: Instant, zone: ZoneInfo | None = None
    ) -> list[Report]:
        """One report per day of ``[start, end)`` (the Usage page's charts), from one read of
        the window: the days add up to the report of the whole window. Days are UTC days, or
        the calendar days of ``zone`` (the web page's time zone; 23 or 25 hours on a DST
        change)."""
        by = parse_by(by) if isinstance(by, str) else by
        check_window(start, end, MAX_DAILY_DAYS)
        starts = day_starts(start, end, zone)
        bounds = [*starts[1:], end]
        days = [(max(d, start), min(e, end)) for d, e in zip(starts, bounds, strict=True)]
        return self._reports(by, days, max(min(end, self.clock.now()), start))

    def _reports(
        self, by: By, windows: list[tuple[Instant, Instant]], until: Instant
    ) -> list[Report]:
        """Reports of consecutive ``windows``, each counted up to ``until`` at most."""
        start = windows[0][0]
        if until <= start:
            return [Report(by, s, e, s, self.busy_pct, {}, Totals()) for s, e in windows]
        # The reads run side by side: SQLite does its part without the GIL, so the claims are
        # turned into objects while the history is being scanned.
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="usage") as pool:
            busy = pool.submit(self.repo.busy, start, until, self.busy_pct)
            starts = pool.submit(self.repo.starts, start, until)
            holds = self.repo.holds(start, until)
            gpu_nodes = self.repo.gpu_nodes()
            busy_spans, started = busy.result(), starts.result()
        reports = []
        for lo, hi in windows:
            cut = max(min(hi, until), lo)
            rows: dict[str, Totals] = {}
            total = Totals()
            if cut > lo:
                usage = account(lo, cut, holds, busy_spans, started, gpu_nodes)
                rows = usage.grouped(by)
                total = usage.total(None if by is By.NODE else rows)  # by node: jobs per node
            reports.append(Report(by, lo, hi, cut, self.busy_pct, rows, total))
        return reports

    def booking_usage(self, booking_id: int) -> BookingUsage:
        """Booked, used and idle GPU time of one booking, up to now (``NotFound`` when there
        is no such booking)."""
        found = self.repo.booking_claims(booking_id)
        if found is None:
            raise NotFound(f"Booking '{booking_id}' does not exist", code="unknown_booking")
        start, end, gpu_pks = found
        until = max(min(end, self.clock.now()), start)
        booked = used = 0
        if until > start and gpu_pks:
            usage = account(
                start,
                until,
                self.repo.holds(start, until, gpu_pks),
                self.repo.busy(start, until, self.busy_pct, gpu_pks),
            )
            booked, used = usage.bookings.get(booking_id, (0, 0))
        return BookingUsage(booking_id, start, end, until, booked, used, self.busy_pct)

    def job_usage(self, job_id: int) -> JobUsage:
        """The ``seff`` line of a job: GPU time, wall time, utilization and memory means and
        peaks over its claims (a running job's claims are cut at now)."""
        now = self.clock.now()
        claims = [
            Hold(c.gpu, c.node, c.start, max(min(c.end, now), c.start), c.user, c.tenant, job=c.job)
            for c in self.repo.job_claims(job_id)
        ]
        samples = []
        if claims:
            gpus = sorted({c.gpu for c in claims})
            samples = self.repo.samples(
                gpus, min(c.start for c in claims), max(c.end for c in claims)
            )
        return JobUsage(job_id, claims, efficiency(claims, samples), self.busy_pct)

    def history(
        self,
        start: Instant,
        end: Instant,
        *,
        user: str | None = None,
        states: Iterable[JobState] | None = None,
        limit: int = 100,
    ) -> list[FinishedJob]:
        """Jobs that finished in ``[start, end)``, newest first (``sacct``)."""
        check_window(start, end)
        if not 1 <= limit <= MAX_HISTORY_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_HISTORY_LIMIT}")
        wanted = [s.value for s in (states or JobState) if s.is_finished]
        if not wanted:
            raise InvalidRequest("state: only finished states have a history", code="bad_state")
        return self.repo.finished(start, end, user=user, states=wanted, limit=limit)
