"""``procplan db current|upgrade``, ``procplan backup`` and ``procplan restore`` end to end:
the commands find the database as ``procplan server`` does (``--database``, ``PROCPLAN_*``),
and restore refuses while a real server process runs on the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from typer.testing import CliRunner

from procplan.cli.main import app
from procplan.store.revisions import shipped
from procplan.testing import ServerProcess

HEAD = shipped().head


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_db_current_and_upgrade(tmp_path: Path) -> None:
    db = str(tmp_path / "p.db")
    code, out = run("db", "current", "--database", db)
    assert code == 1 and "no database at" in out
    code, out = run("db", "upgrade", env={"PROCPLAN_DATABASE": db})
    assert code == 0 and f"empty -> {HEAD}" in out
    code, out = run("db", "upgrade", "--database", db)
    assert code == 0 and f"already at {HEAD}" in out
    code, out = run("db", "current", "--database", db)
    assert code == 0 and f"revision: {HEAD}" in out and "up to date" in out


def test_restore_is_refused_over_a_live_server_and_works_after_it_stops(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    backup = tmp_path / "backup.db"
    with ServerProcess(["--demo", "--database", str(db)]) as server:
        created = httpx.post(
            f"{server.url}/api/v1/bookings",
            json={"node_id": "node-a", "gpu_ids": ["node-a-gpu0"], "label": "x",
                  "start": "2030-01-07T10:00:00+00:00", "duration_minutes": 60},
        )  # fmt: skip
        code, out = run("backup", str(backup), "--database", str(db))
        assert code == 0 and f"schema {HEAD}" in out, out
        code, out = run("restore", str(backup), "--database", str(db))
        assert code == 1 and "stop" in out, out
    code, out = run("restore", str(backup), "--database", str(db))
    assert code == 0 and f"schema {HEAD}, now {HEAD}" in out, out
    assert "previous database is kept" in out
    with sqlite3.connect(db) as conn:
        count = conn.execute("SELECT count(*) FROM bookings").fetchone()[0]
    assert created.status_code == 201, created.text
    assert count == 1
