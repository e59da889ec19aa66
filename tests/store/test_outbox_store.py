"""The outbox in the store (issue #14, ADR 0012), on SQLite and PostgreSQL: a node going
offline and coming back writes its admins' note in the transaction that changes its state,
once; a late report that does not bring it back writes nothing; the migration makes exactly
the tables the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from procplan.core.model import GpuDevice
from procplan.store.channels_repo import ChannelStore
from procplan.store.engine import Store
from procplan.store.nodes_repo import AgentRegistration, NodeStore, ReportWrite
from procplan.store.tables import metadata

NOW = 1_795_428_000
TABLES = {"notify_channels", "outbox", "notify_deliveries"}


def notes(db: Store) -> list[tuple[str, str]]:
    with db.read() as conn:
        return [
            (r[0], r[1]) for r in conn.exec_driver_sql("SELECT kind, key FROM outbox ORDER BY pk")
        ]


def test_a_node_going_down_and_back_tells_the_admins_once(db: Store) -> None:
    ChannelStore(db).add(None, "json://127.0.0.1:9/lab", "node.offline,node.online", "lab", NOW)
    ns = NodeStore(db)
    device = GpuDevice(0, "GPU-0000", "NVIDIA H100", 81559)
    ns.register(
        AgentRegistration("gpu-01", "gpu-01.lab", "10.0.0.5", "s1", 2.0, (device,), {}), NOW
    )
    assert ns.mark_offline("gpu-01", "s1", NOW + 5, NOW + 10)
    assert not ns.mark_offline("gpu-01", "s1", NOW + 5, NOW + 11)  # once
    ns.write_reports([ReportWrite("gpu-01", "s1", NOW + 4.5, {})])  # from before: still down
    assert notes(db) == [("node.offline", f"node:gpu-01:node.offline:{NOW + 10}")]
    ns.write_reports([ReportWrite("gpu-01", "s1", NOW + 12.5, {})])  # back
    ns.write_reports([ReportWrite("gpu-01", "s1", NOW + 13.5, {})])  # and still up
    assert [kind for kind, _ in notes(db)] == ["node.offline", "node.online"]


def test_no_channel_no_note(db: Store) -> None:
    ns = NodeStore(db)
    device = GpuDevice(0, "GPU-0000", "NVIDIA H100", 81559)
    ns.register(
        AgentRegistration("gpu-01", "gpu-01.lab", "10.0.0.5", "s1", 2.0, (device,), {}), NOW
    )
    assert ns.mark_offline("gpu-01", "s1", NOW + 5, NOW + 10)
    assert notes(db) == []


def test_the_migration_makes_the_declared_notification_tables(db: Store) -> None:
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diffs if TABLES & set(_tables_of(d))]
    assert ours == []


def _tables_of(diff: object) -> list[str]:
    """Table names a compare_metadata entry touches (entries are tuples or lists of them)."""
    if isinstance(diff, list):
        return [t for d in diff for t in _tables_of(d)]
    names = []
    for part in diff if isinstance(diff, tuple) else ():
        table = getattr(part, "table", None)
        name = getattr(table, "name", None) or getattr(part, "name", None)
        if isinstance(name, str):
            names.append(name)
    return names
