"""The cycle lock is free for another server the moment its holder releases it (issue #16).

On PostgreSQL the lock is a session advisory lock: a released holder's connection must end,
not idle in its pool still holding it (another server would then never become the leader)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from procplan.store.engine import Store, make_engine
from procplan.store.leader import LOCK_KEEPALIVES, CycleLock


@pytest.mark.postgres
def test_a_released_lock_is_free_for_another_server_at_once(pg_url: str) -> None:
    first, second = Store(make_engine(pg_url)), Store(make_engine(pg_url))
    try:
        holder, other = CycleLock(first), CycleLock(second)
        assert holder.try_acquire()
        assert not other.try_acquire()
        holder.release()
        assert other.try_acquire()
        assert not holder.try_acquire()  # a fresh connection of the first pool: refused
        other.release()
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.postgres
def test_the_lock_session_has_keepalives_so_a_vanished_host_loses_it(pg_url: str) -> None:
    """A leader whose host disappears sends no FIN: only keepalives end its session (and free
    the lock) in seconds rather than the kernel's two hours."""
    store = Store(make_engine(pg_url))
    lock = CycleLock(store)
    try:
        assert lock.try_acquire()
        assert lock._conn is not None
        for name, value in LOCK_KEEPALIVES.items():
            shown = lock._conn.execute(text(f"SHOW {name}")).scalar_one()
            assert shown in (str(value), f"{value}s")  # units: "5" or "5s" by version
        lock.release()
    finally:
        store.dispose()
