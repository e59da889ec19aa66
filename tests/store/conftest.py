"""Fixtures of the store tests: the demo topology on a migrated SQLite store (job tests), and
``db``: a migrated store on SQLite and, where one is configured, PostgreSQL."""

from __future__ import annotations

import pytest
from jobs_kit import NOW

from procplan.core.bookings import BookingLimits
from procplan.core.topology import demo_topology
from procplan.service.bookings import BookingService
from procplan.store.engine import Store
from procplan.store.jobs_repo import JobStore
from procplan.testing import FakeClock


@pytest.fixture
def bookings(store: Store) -> BookingService:
    service = BookingService(store, FakeClock(NOW), BookingLimits())
    service.replace_topology(demo_topology())
    return service


@pytest.fixture
def js(store: Store, bookings: BookingService) -> JobStore:
    return JobStore(store, bookings.bookings.mirror)
