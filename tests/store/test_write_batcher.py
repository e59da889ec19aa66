"""Group commit: concurrent writes share transactions, yet each succeeds or fails alone."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from procplan.core.errors import Conflict
from procplan.store.engine import Store, StoreUnavailable, make_engine
from procplan.store.migrate import upgrade
from procplan.store.tables import meta
from procplan.store.write_batcher import WriteBatcher

VERSION = sa.select(meta.c.value).where(meta.c.key == "ledger_version")
BUMP = sa.update(meta).where(meta.c.key == "ledger_version").values(value=meta.c.value + 1)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    built = Store(make_engine(f"sqlite:///{tmp_path / 'b.db'}"))
    upgrade(built)
    return built


def bump(conn: Connection) -> int:
    conn.execute(BUMP)
    return int(conn.execute(VERSION).scalar_one())


def bump_then_refuse(conn: Connection) -> int:
    conn.execute(BUMP)
    raise Conflict("refused after writing")


def test_a_refused_write_in_a_batch_is_rolled_back_alone(store: Store) -> None:
    batcher = WriteBatcher(store)
    gate = threading.Barrier(13)
    outcomes: list[object] = []

    def call(work):  # type: ignore[no-untyped-def]
        gate.wait()
        try:
            outcomes.append(batcher.run(work))
        except Conflict as exc:
            outcomes.append(exc)

    threads = [
        threading.Thread(target=call, args=(bump_then_refuse if i % 3 == 0 else bump,))
        for i in range(12)
    ]
    for thread in threads:
        thread.start()
    gate.wait()
    for thread in threads:
        thread.join(10)
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    written = sorted(o for o in outcomes if isinstance(o, int))
    assert len(refused) == 4
    assert written == list(range(1, 9))  # each saw the writes before it, none of the refused
    with store.read() as conn:
        assert conn.execute(VERSION).scalar_one() == 8


def test_results_are_returned_only_after_the_commit(store: Store) -> None:
    batcher = WriteBatcher(store)
    version = batcher.run(bump)
    other = Store(make_engine(str(store.engine.url)))
    with other.read() as conn:  # a different connection sees it: it is committed
        assert conn.execute(VERSION).scalar_one() == version == 1
    other.dispose()


def test_a_failed_transaction_fails_every_write_in_it(store: Store) -> None:
    batcher = WriteBatcher(store)

    def broken(conn: Connection) -> None:
        conn.exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(StoreUnavailable):  # the store's translation of OperationalError
        batcher.run(broken)
    assert batcher.run(bump) == 1  # the writer thread survived
