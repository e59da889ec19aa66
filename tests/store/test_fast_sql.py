"""The DBAPI path of the hot statements answers exactly as SQLAlchemy does (issue #18).

``store.fast_sql`` compiles each statement once per shape and runs it on the transaction's own
SQLite connection. Same rows as SQLAlchemy's execution for a plain read, an expanding ``IN``
of several lengths and a literal-execute constant; an INSERT gets the table's Python defaults
for the columns it is not given; errors come back as SQLAlchemy's own exceptions.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from procplan.core.topology import demo_topology
from procplan.store import fast_sql
from procplan.store.engine import Store
from procplan.store.ledger_holds import _HOLDS
from procplan.store.rows import CHANGED_SINCE
from procplan.store.tables import bookings, claims, gpus, nodes, users
from procplan.store.topology_repo import sync_topology

_GPU_PKS = select(gpus.c.pk).order_by(gpus.c.pk)


def _booked(conn: Connection) -> list[int]:
    """The demo topology, one booking holding the first three GPUs; the GPUs' keys."""
    sync_topology(conn, demo_topology(), 0)
    pks = [pk for (pk,) in conn.execute(_GPU_PKS)]
    node_pk = conn.execute(select(nodes.c.pk).limit(1)).scalar_one()
    user_pk = conn.execute(
        insert(users).values(name="ann", created_at=0).returning(users.c.pk)
    ).scalar_one()
    booking = conn.execute(
        insert(bookings).returning(bookings.c.id),
        {"node_pk": node_pk, "user_pk": user_pk, "label": "A", "priority": 1, "status": "active",
         "start_s": 0, "end_s": 3600, "created_at": 0, "updated_at": 0, "version": 1},
    ).scalar_one()  # fmt: skip
    conn.execute(
        insert(claims),
        [{"booking_id": booking, "gpu_pk": pk, "start_s": 0, "end_s": 3600, "active": True,
          "position": i} for i, pk in enumerate(pks[:3])],
    )  # fmt: skip
    return pks


def test_reads_match_sqlalchemy(store: Store) -> None:
    with store.write() as conn:
        pks = _booked(conn)
        for ask in (pks[:1], pks[:3], pks):  # one compiled shape per length of the list
            params = {"gpu_pks": ask, "start": 0, "end": 2**40}
            expected = [tuple(r) for r in conn.execute(_HOLDS, params)]
            assert expected and fast_sql.rows(conn, _HOLDS, params) == expected
        by_sqlalchemy = [tuple(r) for r in conn.execute(CHANGED_SINCE, {"after": -1})]
        assert by_sqlalchemy and fast_sql.rows(conn, CHANGED_SINCE, {"after": -1}) == by_sqlalchemy


def test_an_insert_gets_the_tables_python_defaults(store: Store) -> None:
    with store.write() as conn:
        sync_topology(conn, demo_topology(), 0)
        node_pk = conn.execute(select(nodes.c.pk).limit(1)).scalar_one()
        user_pk = conn.execute(
            insert(users).values(name="ann", created_at=0).returning(users.c.pk)
        ).scalar_one()
        row = {
            "node_pk": node_pk, "user_pk": user_pk, "label": "A", "priority": 1,
            "status": "active", "start_s": 0, "end_s": 3600, "created_at": 0, "updated_at": 0,
            "version": 1,
        }  # fmt: skip
        made = fast_sql.scalar(conn, bookings.insert().returning(bookings.c.id), row)
        keep = conn.execute(select(bookings.c.idle_keep).where(bookings.c.id == made))
        assert keep.scalar_one() is False  # idle_keep's default, filled in


def test_errors_are_sqlalchemys(store: Store) -> None:
    with pytest.raises(IntegrityError), store.write() as conn:
        fast_sql.execute_many(
            conn,
            claims.insert(),
            [{"booking_id": 999_999, "gpu_pk": 999_999, "start_s": 0, "end_s": 1,
              "active": True, "position": 0}],
        )  # fmt: skip


def test_a_read_outside_a_transaction_sees_what_is_committed(store: Store) -> None:
    with store.write() as conn:
        sync_topology(conn, demo_topology(), 0)
    with store.read() as conn:
        pks = [(pk,) for (pk,) in conn.execute(_GPU_PKS)]
    assert pks and store.read_rows(_GPU_PKS) == pks


def test_a_named_parameter_is_read_by_name(store: Store) -> None:
    by_name = select(nodes.c.id).where(nodes.c.id == bindparam("wanted"))
    with store.write() as conn:
        sync_topology(conn, demo_topology(), 0)
        assert fast_sql.rows(conn, by_name, {"wanted": "node-a"}) == [("node-a",)]
        assert fast_sql.rows(conn, by_name, {"wanted": "nowhere"}) == []
