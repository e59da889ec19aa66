"""A backup taken while clients keep booking over HTTP holds every booking acknowledged (201)
before it began (issue #16 item 3): acknowledged means committed, and the backup copies one
snapshot taken when it starts. The app is the composed server in-process, its database a
SQLite file (WAL), the backup ``procplan backup``'s own code path (``dbadmin.backup``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from tests.conftest import FIXED_NOW, admin_client

from procplan import dbadmin
from procplan.config import Settings
from procplan.core.timeutil import to_iso
from procplan.server import Composed

HOUR = 3600
CLIENTS = 4


Ack = tuple[float, int, str]  # when the 201 arrived, the booking id, the client's GPU


def _client_loop(composed: Composed, gpu: str, stop: threading.Event, acked: list[Ack]) -> None:
    """Book ``gpu`` hour after hour; note each 201's id and when the answer arrived."""
    with admin_client(composed) as client:
        hour = 1
        while not stop.is_set():
            body = {
                "node_id": "node-b",
                "start": to_iso(FIXED_NOW + hour * HOUR),
                "duration_minutes": 60,
                "gpu_ids": [gpu],
                "label": "load",
            }
            answer = client.post("/api/v1/bookings", json=body)
            assert answer.status_code == 201, answer.text
            acked.append((time.monotonic(), answer.json()["booking"]["id"], gpu))
            hour += 1


def test_backup_under_booking_load_keeps_every_acknowledged_booking(
    composed: Composed, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("procplan.store.backup.STEP_PAGES", 4)  # many steps, bookings between
    stop = threading.Event()
    acked: list[Ack] = []
    clients = [
        threading.Thread(target=_client_loop, args=(composed, f"node-b-gpu{i}", stop, acked))
        for i in range(CLIENTS)
    ]
    for thread in clients:
        thread.start()
    try:
        deadline = time.monotonic() + 20
        while len(acked) < 20:
            assert time.monotonic() < deadline, "the clients did not start booking"
            time.sleep(0.01)
        began = time.monotonic()
        mid_backup: list[int] = []

        def first_step(_remaining: int, _total: int) -> None:
            """Hold the backup after its first step until the clients got more 201s."""
            if mid_backup:
                return
            seen = len(acked)
            deadline = time.monotonic() + 20
            while len(acked) < seen + 3 * CLIENTS:
                assert time.monotonic() < deadline, "the clients stopped booking"
                time.sleep(0.005)
            # Each client's first answer after this point may be of a request committed
            # before the snapshot; its later ones were committed after it.
            firsts: set[str] = set()
            for _, booking_id, gpu in acked[seen:]:
                if gpu in firsts:
                    mid_backup.append(booking_id)
                firsts.add(gpu)

        done = dbadmin.backup(
            Settings(db_url=sqlite_url), tmp_path / "backup.db", progress=first_step
        )
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    before = {booking_id for at, booking_id, _ in acked if at < began}
    with sqlite3.connect(done.path) as conn:
        copied = {row[0] for row in conn.execute("SELECT id FROM bookings")}
    assert before and before <= copied
    assert mid_backup and not copied & set(mid_backup)  # committed after its snapshot
