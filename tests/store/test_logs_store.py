"""LogStore: appends at the stored size only (offset mismatch names the size to resend from),
the per-stream cap, reads stitched across chunks, run selection, unknown jobs and streams.
SQLite always, PostgreSQL when ``PROCPLAN_TEST_PG_URL`` is set."""

from __future__ import annotations

import pytest
from jobs_kit import NOW, job

from procplan.core.errors import InvalidRequest, NotFound
from procplan.core.topology import demo_topology
from procplan.store.engine import Store
from procplan.store.jobs_repo import JobStore
from procplan.store.logs_repo import LogOffsetMismatch, LogStore
from procplan.store.topology_repo import sync_topology

CAP = 1000


@pytest.fixture
def db(db: Store) -> Store:
    """The shared migrated store, with a topology."""
    with db.write() as conn:
        sync_topology(conn, demo_topology(), NOW)
    return db


@pytest.fixture
def job_id(db: Store) -> int:
    return JobStore(db).submit([job(command=("true",))], NOW)[0].id


@pytest.fixture
def logs(db: Store) -> LogStore:
    return LogStore(db)


def test_append_and_read_across_chunks(logs: LogStore, job_id: int) -> None:
    assert logs.read(job_id, "stdout", 0, 100) == (b"", 0, False, None)
    size = 0
    for piece in (b"hello ", b"wonderful ", b"world\n"):
        size, truncated = logs.append(job_id, 0, "stdout", size, piece, CAP, NOW)
        assert not truncated
    assert size == 22
    assert logs.read(job_id, "stdout", 0, 100) == (b"hello wonderful world\n", 22, False, 0)
    assert logs.read(job_id, "stdout", 3, 10)[0] == b"lo wonderf"  # spans three chunks
    assert logs.read(job_id, "stdout", 6, 10)[0] == b"wonderful "  # exactly one chunk
    assert logs.read(job_id, "stdout", 16, 3)[0] == b"wor"
    assert logs.read(job_id, "stdout", 22, 10) == (b"", 22, False, 0)
    assert logs.read(job_id, "stdout", 50, 10)[0] == b""
    assert logs.read(job_id, "stdout", 0, 0)[0] == b""
    assert logs.read(job_id, "stderr", 0, 10) == (b"", 0, False, None)


def test_offset_mismatch_names_the_size(logs: LogStore, job_id: int) -> None:
    with pytest.raises(LogOffsetMismatch) as raised:
        logs.append(job_id, 0, "stderr", 5, b"late", CAP, NOW)
    assert (raised.value.size, raised.value.code, raised.value.status) == (
        0,
        "offset_mismatch",
        409,
    )
    logs.append(job_id, 0, "stderr", 0, b"abc", CAP, NOW)
    for wrong in (0, 2, 4):
        with pytest.raises(LogOffsetMismatch) as raised:
            logs.append(job_id, 0, "stderr", wrong, b"xyz", CAP, NOW)
        assert raised.value.size == 3
        assert raised.value.message == (
            f"log offset {wrong} does not match the stored size 3: resend from 3"
        )
    assert logs.append(job_id, 0, "stderr", 3, b"", CAP, NOW) == (3, False)  # empty: a no-op
    assert logs.append(job_id, 0, "stderr", 99, b"", CAP, NOW) == (3, False)
    assert logs.read(job_id, "stderr", 0, 10) == (b"abc", 3, False, 0)


def test_cap_truncates_and_then_takes_nothing(logs: LogStore, job_id: int) -> None:
    assert logs.append(job_id, 0, "stdout", 0, b"x" * 600, CAP, NOW) == (600, False)
    assert logs.append(job_id, 0, "stdout", 600, b"y" * 600, CAP, NOW + 1) == (1000, True)
    assert logs.append(job_id, 0, "stdout", 1200, b"z" * 10, CAP, NOW + 2) == (1000, True)
    data, size, truncated, run = logs.read(job_id, "stdout", 590, 100)
    assert (data, size, truncated, run) == (b"x" * 10 + b"y" * 90, 1000, True, 0)
    assert logs.read(job_id, "stdout", 990, 100)[0] == b"y" * 10


def test_runs_are_stored_apart_and_read_as_one_log_by_default(logs: LogStore, job_id: int) -> None:
    """A requeued job's runs keep their own logs (``run=R`` reads one); without ``run`` they
    read as one log in run order, so a requeue never hides earlier output (issue #19)."""
    logs.append(job_id, 0, "stdout", 0, b"first run", CAP, NOW)
    logs.append(job_id, 1, "stdout", 0, b"second", CAP, NOW)
    logs.append(job_id, 2, "stderr", 0, b"only stderr", CAP, NOW)
    assert logs.read(job_id, "stdout", 0, 100) == (b"first runsecond", 15, False, 1)
    assert logs.read(job_id, "stdout", 5, 6) == (b" runse", 15, False, 1)  # across runs
    assert logs.read(job_id, "stdout", 0, 100, run=0) == (b"first run", 9, False, 0)
    assert logs.read(job_id, "stdout", 0, 100, run=2) == (b"", 0, False, None)
    assert logs.read(job_id, "stderr", 0, 100) == (b"only stderr", 11, False, 2)
    assert logs.delete_job(job_id) == 3
    assert logs.read(job_id, "stdout", 0, 100) == (b"", 0, False, None)


def test_unknown_job_and_bad_arguments(logs: LogStore, job_id: int) -> None:
    with pytest.raises(NotFound) as raised:
        logs.append(job_id + 100, 0, "stdout", 0, b"x", CAP, NOW)
    assert raised.value.code == "unknown_job"
    with pytest.raises(InvalidRequest, match="stream must be 'stdout' or 'stderr'"):
        logs.append(job_id, 0, "stdlog", 0, b"x", CAP, NOW)
    with pytest.raises(InvalidRequest):
        logs.read(job_id, "both", 0, 10)
    with pytest.raises(InvalidRequest):
        logs.read(job_id, "stdout", -1, 10)
