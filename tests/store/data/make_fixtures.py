"""ProcPlan databases at every earlier schema revision, with representative rows (issue #16).

``tests/store/test_upgrade_paths.py`` builds them at run time (a second for all of them) and
upgrades each to head; to look at one by hand, write them out::

    .venv/bin/python tests/store/data/make_fixtures.py OUTDIR   # OUTDIR/procplan-0001.sqlite …

A database at revision R is made by running the shipped migrations up to R, then writing
``ROWS`` with plain SQL: each table that exists at R gets the columns of its rows that it has
at R (``gpu_ids`` only before 0005, ``role`` only from 0004, …), and any other NOT NULL column
without a default gets the zero of its type. So one description of "a small cluster in use"
fits every revision, and a new migration needs new rows here only for its new tables.

The cluster: nodes n1 (4 GPUs) and n2 (2 GPUs); users alice and bob (admin); tenant "lab";
an active future booking of alice on n1-g0 and n1-g1, a completed one of bob on n2-g0 and a
cancelled one; a running interactive job on n1-g3, a pending batch job and a finished one
with a log; agent status and GPU history; a token and an audit row; a notification channel
with one delivered event.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from procplan.store.engine import Store, make_engine
from procplan.store.migrate import upgrade

NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC, as the other store tests
HOUR = 3600
OPEN_END = 2**62  # core.jobs.OPEN_END: a claim without an end
SEP = "\x1f"  # the separator of the text columns that 0005 dropped
REQUIRES = "_requires"  # a row's columns that must exist at the revision, else it is left out


def _job(pk: int, user: int, state: str, kind: str, **more: Any) -> dict[str, Any]:
    row = {
        "id": pk, "user_pk": user, "tenant_pk": 2, "kind": kind, "name": f"job{pk}",
        "state": state, "priority": 100, "gpu_count": 1, "nodes": 1, "submitted_at": NOW - 2 * HOUR,
        "borrowed": False, "requeues": 0, "command": '["python", "train.py"]', "env": "[]",
        "message": "", "extra": "{}", "version": pk,
    }  # fmt: skip
    return row | more


def _claim(pk: int, gpu: int, start: int, end: int, active: bool, **owner: Any) -> dict[str, Any]:
    row = {"pk": pk, "gpu_pk": gpu, "start_s": start, "end_s": end, "active": active} | owner
    if "job_id" in owner:
        row[REQUIRES] = ("job_id",)  # a job's claim: none before jobs existed (0002)
    return row


# Tables in insertion order (parents first); rows name columns of any revision.
ROWS: dict[str, list[dict[str, Any]]] = {
    "nodes": [
        {
            "pk": 1,
            "id": "n1",
            "name": "Node 1",
            "position": 0,
            "retired": False,
            "created_at": NOW - 48 * HOUR,
            "source": "config",
        },
        {
            "pk": 2,
            "id": "n2",
            "name": "Node 2",
            "position": 1,
            "retired": False,
            "created_at": NOW - 48 * HOUR,
            "source": "agent",
        },
    ],
    "gpus": [
        {
            "pk": pk,
            "id": gpu_id,
            "node_pk": node,
            "position": position,
            "kind": "A100",
            "uuid": f"GPU-{pk}",
            "memory_mb": 40960,
            "retired": False,
            "created_at": NOW - 48 * HOUR,
        }
        for pk, (gpu_id, node, position) in enumerate(
            [
                ("n1-g0", 1, 0),
                ("n1-g1", 1, 1),
                ("n1-g2", 1, 2),
                ("n1-g3", 1, 3),
                ("n2-g0", 2, 0),
                ("n2-g1", 2, 1),
            ],
            start=1,
        )
    ],
    "users": [
        {
            "pk": 1,
            "name": "alice",
            "created_at": NOW - 48 * HOUR,
            "role": "user",
            "unix_user": "alice",
        },
        {"pk": 2, "name": "bob", "created_at": NOW - 48 * HOUR, "role": "admin"},
    ],
    "tenants": [
        {
            "pk": 2,
            "id": "lab",
            "email": "lab@example.org",
            "max_gpus": 4,
            "fair_share_weight": 2.0,
            "allow_borrow": True,
            "allow_preemption": True,
            "priority_tier": 0,
            "usage_gpu_s": 3600.0,
            "usage_at": NOW - HOUR,
            "created_at": NOW - 48 * HOUR,
        },
    ],
    "memberships": [{"pk": 1, "tenant_pk": 2, "user_pk": 1, "created_at": NOW - 48 * HOUR}],
    "bookings": [
        {
            "id": 1,
            "node_pk": 1,
            "user_pk": 1,
            "label": "train",
            "priority": 2,
            "status": "active",
            "start_s": NOW + HOUR,
            "end_s": NOW + 3 * HOUR,
            "gpu_ids": f"n1-g0{SEP}n1-g1",
            "created_at": NOW - HOUR,
            "updated_at": NOW - HOUR,
            "version": 1,
        },
        {
            "id": 2,
            "node_pk": 2,
            "user_pk": 2,
            "label": "eval",
            "priority": 3,
            "status": "completed",
            "start_s": NOW - 26 * HOUR,
            "end_s": NOW - 24 * HOUR,
            "gpu_ids": "n2-g0",
            "created_at": NOW - 27 * HOUR,
            "updated_at": NOW - 24 * HOUR,
            "version": 2,
        },
        {
            "id": 3,
            "node_pk": 1,
            "user_pk": 1,
            "label": "oops",
            "priority": 1,
            "status": "cancelled",
            "start_s": NOW + 5 * HOUR,
            "end_s": NOW + 6 * HOUR,
            "gpu_ids": "n1-g2",
            "created_at": NOW - HOUR,
            "updated_at": NOW - HOUR,
            "version": 3,
        },
    ],
    "jobs": [
        _job(
            1,
            1,
            "running",
            "interactive",
            started_at=NOW - HOUR,
            alloc_nodes="n1",
            alloc_gpus="n1-g3",
            pid=4242,
            host="n1",
            lease_expires_at=NOW + 30,
        ),
        _job(2, 2, "pending", "batch", reason="Resources", gpu_count=2),
        _job(
            3,
            1,
            "completed",
            "batch",
            started_at=NOW - 5 * HOUR,
            ended_at=NOW - 4 * HOUR,
            alloc_nodes="n2",
            alloc_gpus="n2-g1",
            exit_code=0,
        ),
    ],
    "claims": [
        _claim(1, 1, NOW + HOUR, NOW + 3 * HOUR, True, booking_id=1, position=0),
        _claim(2, 2, NOW + HOUR, NOW + 3 * HOUR, True, booking_id=1, position=1),
        _claim(3, 5, NOW - 26 * HOUR, NOW - 24 * HOUR, True, booking_id=2, position=0),
        _claim(4, 3, NOW + 5 * HOUR, NOW + 6 * HOUR, False, booking_id=3, position=0),
        _claim(5, 4, NOW - HOUR, OPEN_END, True, job_id=1, position=0, run=0),
        _claim(6, 6, NOW - 5 * HOUR, NOW - 4 * HOUR, False, job_id=3, position=0, run=0),
    ],
    "node_status": [
        {
            "node_pk": 2,
            "session": "s1",
            "hostname": "n2",
            "address": "10.0.0.2",
            "interval_s": 2.0,
            "registered_at": NOW - HOUR,
            "last_seen": NOW - 1.0,
            "online": True,
            "agent": '{"version": "0"}',
            "report": "{}",
        },
    ],
    "gpu_history": [
        {
            "gpu_pk": 5,
            "step_s": step,
            "bucket": NOW - HOUR,
            "n": 30,
            "util_sum": 1500.0,
            "util_n": 30,
            "util_max": 90.0,
        }
        for step in (60, 3600)
    ],
    "job_logs": [
        {"pk": 1, "job_id": 3, "run": 0, "stream": "stdout", "offset": 0, "data": b"hello\n"}
    ],
    "job_log_heads": [
        {
            "job_id": 3,
            "run": 0,
            "stream": "stdout",
            "size": 6,
            "truncated": False,
            "updated_at": NOW - 4 * HOUR,
        },
    ],
    "credentials": [
        {
            "pk": 1,
            "user_pk": 1,
            "kind": "token",
            "name": "laptop",
            "digest": "a" * 64,
            "created_at": NOW - HOUR,
            "revoked": False,
        },
    ],
    "audit": [
        {
            "pk": 1,
            "at": NOW - HOUR,
            "actor": "alice",
            "action": "booking.create",
            "target": "booking 1",
            "owner": "alice",
            "as_admin": False,
            "via": "api",
            "detail": "",
        },
    ],
    "notify_channels": [
        {
            "pk": 1,
            "user_pk": 1,
            "url": "json://localhost/hook",
            "events": "*",
            "label": "hook",
            "created_at": NOW - HOUR,
        },
    ],
    "outbox": [
        {
            "pk": 1,
            "key": "booking-start-1",
            "kind": "booking_start",
            "user_pk": 1,
            "subject": "s",
            "body": "b",
            "created_at": NOW - HOUR,
            "done_at": NOW - HOUR,
        },
    ],
    "notify_deliveries": [
        {
            "outbox_pk": 1,
            "channel_pk": 1,
            "attempts": 1,
            "next_at": NOW - HOUR,
            "sent_at": NOW - HOUR,
        },
    ],
}
META = {"topology_version": 1, "ledger_version": 3, "jobs_version": 3}


def build(path: Path, revision: str) -> Path:
    """A SQLite database at ``revision`` holding ``ROWS`` (the tables it has by then)."""
    store = Store(make_engine(f"sqlite:///{path}"))
    try:
        upgrade(store, revision)
        with store.write() as conn:
            _fill(conn)
    finally:
        store.dispose()
    return path


def _fill(conn: sa.Connection) -> None:
    existing = sa.MetaData()
    existing.reflect(conn)
    for name, rows in ROWS.items():
        table = existing.tables.get(name)
        if table is None:
            continue
        for row in rows:  # one by one: rows of a table may name different columns
            if set(row.get(REQUIRES, ())) <= set(table.c.keys()):
                conn.execute(table.insert().values(_fit(table, row)))
    meta = existing.tables["meta"]
    for key, value in META.items():
        conn.execute(meta.update().where(meta.c.key == key).values(value=value))


def _fit(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    fitted = {key: value for key, value in row.items() if key in table.c}
    for column in table.c:
        if column.name in fitted or column.nullable or column.server_default is not None:
            continue
        if column.primary_key and column.autoincrement:
            continue
        fitted[column.name] = _zero(column.type)
    return fitted


def _zero(kind: sa.types.TypeEngine[Any]) -> object:
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, (sa.Integer, sa.Float, sa.Numeric)):
        return 0
    if isinstance(kind, sa.LargeBinary):
        return b""
    return ""


def earlier_revisions() -> list[str]:
    """Every shipped revision but the newest, oldest first."""
    from procplan.store.revisions import shipped

    return list(shipped().known[:-1])


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    for rev in earlier_revisions():
        made = build(out / f"procplan-{rev}.sqlite", rev)
        print(f"{made} ({made.stat().st_size // 1024} kB)")
