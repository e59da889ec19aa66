"""The audit log: batched in the background, never lost by a reader or a clean stop."""

from __future__ import annotations

from tests.conftest import FIXED_NOW

from procplan.core.identity import Principal, Role, Via
from procplan.service.audit import AuditLog
from procplan.store.accounts_repo import AccountStore
from procplan.store.engine import Store
from procplan.store.write_batcher import WriteBatcher
from procplan.testing import FakeClock

ADMIN = Principal("root", Role.ADMIN, Via.PEER, "root", 0)
ADA = Principal("ada", Role.USER, Via.TOKEN)


def test_entries_ride_the_group_commit_and_a_reader_sees_them_at_once(db: Store) -> None:
    log = AuditLog(AccountStore(db), FakeClock(FIXED_NOW), flush_s=60, writes=WriteBatcher(db))
    log.start()
    try:
        log.record(ADA, "booking.create", "booking 1", "ada")
        log.record(ADMIN, "booking.cancel", "booking 1", "ada")
        entries, total = log.entries(None, 10, 0)  # flushes what is pending first
        assert total == 2
        newest, first = entries
        assert (newest.actor, newest.owner, newest.as_admin, newest.via) == (
            "root", "ada", True, "peer",
        )  # fmt: skip
        assert (first.actor, first.as_admin) == ("ada", False)
        log.record(ADA, "job.submit", "job 7", "ada")
    finally:
        log.stop()  # a clean stop writes what is still queued
    assert log.store.audit("ada", 10, 0)[1] == 3
    assert log.store.audit("nobody", 10, 0)[1] == 0
