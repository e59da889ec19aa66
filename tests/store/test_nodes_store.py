"""NodeStore: agent registrations against config and agent nodes, config reloads that keep
agent nodes, written-behind reports and the conditional offline mark; plus migration 0003
up and down. SQLite always, PostgreSQL when ``PROCPLAN_TEST_PG_URL`` is set."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from procplan.core.errors import Conflict
from procplan.core.model import UNSPECIFIED_KIND, Gpu, GpuDevice, Node, Topology
from procplan.core.topology import demo_topology
from procplan.store.engine import Store
from procplan.store.migrate import alembic_config, upgrade
from procplan.store.nodes_repo import AgentRegistration, NodeStore, ReportWrite
from procplan.store.tables import metadata
from procplan.store.topology_repo import load_topology, sync_topology, topology_version

NOW = 1_795_428_000
NEW_TABLES = {"node_status", "gpu_history", "job_logs", "job_log_heads"}


@pytest.fixture
def ns(db: Store) -> NodeStore:
    return NodeStore(db)


def device(index: int, name: str = "NVIDIA H100", memory_mb: int | None = 81559) -> GpuDevice:
    return GpuDevice(index, f"GPU-{index:04d}", name, memory_mb)


def reg(
    node_id: str, *devices: GpuDevice, session: str = "s1", **agent: object
) -> AgentRegistration:
    return AgentRegistration(
        node_id, f"{node_id}.lab", "10.0.0.5", session, 2.0, devices, agent or {"pid": 42}
    )


def version(db: Store) -> int:
    with db.read() as conn:
        return topology_version(conn)


def topology(db: Store) -> Topology:
    with db.read() as conn:
        return load_topology(conn)


def sync(db: Store, topo: Topology) -> None:
    with db.write() as conn:
        sync_topology(conn, topo, NOW)


def retired_gpus(db: Store) -> set[str]:
    with db.read() as conn:
        return set(conn.execute(sa.text("SELECT id FROM gpus WHERE retired")).scalars())


# ---------------------------------------------------------------------------- registration


def test_new_node_becomes_an_agent_node(db: Store, ns: NodeStore) -> None:
    sync(db, demo_topology())
    before = version(db)
    node, warnings = ns.register(reg("gpu-01", device(0), device(1)), NOW)
    assert warnings == []
    assert node == Node(
        "gpu-01",
        "gpu-01",
        (
            Gpu("gpu-01-gpu0", "NVIDIA H100", 0, "GPU-0000", 81559),
            Gpu("gpu-01-gpu1", "NVIDIA H100", 1, "GPU-0001", 81559),
        ),
    )
    assert version(db) == before + 1
    # Agent nodes sort after the config's nodes.
    assert [n.id for n in topology(db).nodes] == ["node-a", "node-b", "gpu-01"]
    status = ns.status("gpu-01")
    assert status is not None
    assert (status.session, status.hostname, status.online, status.report) == (
        "s1",
        "gpu-01.lab",
        True,
        {},
    )
    assert (status.registered_at, status.last_seen, status.agent) == (NOW, NOW, {"pid": 42})


def test_reregistration_with_the_same_devices_keeps_the_version(db: Store, ns: NodeStore) -> None:
    ns.register(reg("gpu-01", device(0), device(1)), NOW)
    before = version(db)
    node, _ = ns.register(reg("gpu-01", device(0), device(1), session="s2"), NOW + 60)
    assert version(db) == before
    assert [g.id for g in node.gpus] == ["gpu-01-gpu0", "gpu-01-gpu1"]
    status = ns.status("gpu-01")
    assert status is not None and (status.session, status.registered_at) == ("s2", NOW + 60)


def test_devices_that_disappear_are_retired_and_revived(db: Store, ns: NodeStore) -> None:
    ns.register(reg("gpu-01", device(0), device(1), device(2)), NOW)
    before = version(db)
    node, _ = ns.register(reg("gpu-01", device(0), device(2)), NOW)
    assert version(db) == before + 1
    # The index is the PCI index: a gap stays a gap (CUDA_VISIBLE_DEVICES counts in it).
    assert [(g.id, g.index) for g in node.gpus] == [("gpu-01-gpu0", 0), ("gpu-01-gpu2", 2)]
    assert retired_gpus(db) == {"gpu-01-gpu1"}
    with db.read() as conn:
        pk = conn.execute(sa.text("SELECT pk FROM gpus WHERE id = 'gpu-01-gpu1'")).scalar()
    node, _ = ns.register(reg("gpu-01", device(0), device(1), device(2)), NOW)
    assert len(node.gpus) == 3 and retired_gpus(db) == set()
    with db.read() as conn:
        assert conn.execute(sa.text("SELECT pk FROM gpus WHERE id = 'gpu-01-gpu1'")).scalar() == pk


def test_config_node_is_matched_by_position(db: Store, ns: NodeStore) -> None:
    config = Topology(
        (
            Node(
                "box",
                "The box",
                (Gpu("fast", "A100", 0), Gpu("slow", UNSPECIFIED_KIND, 1)),
            ),
        )
    )
    sync(db, config)
    before = version(db)
    node, warnings = ns.register(reg("box", device(0, "NVIDIA H100"), device(1, "NVIDIA L4")), NOW)
    assert warnings == []
    assert node == Node(
        "box",
        "The box",
        (
            Gpu("fast", "A100", 0, "GPU-0000", 81559),  # the config's kind wins
            Gpu("slow", "NVIDIA L4", 1, "GPU-0001", 81559),  # unspecified: the device's
        ),
    )
    assert version(db) == before + 1
    ns.register(reg("box", device(0, "NVIDIA H100"), device(1, "NVIDIA L4")), NOW)
    assert version(db) == before + 1
    # A config reload that says nothing about uuids keeps what the agent reported.
    sync(db, config)
    assert topology(db).nodes[0] == node


def test_config_node_count_mismatches_warn(db: Store, ns: NodeStore) -> None:
    sync(db, Topology((Node("box", "box", (Gpu("g0"), Gpu("g1"))),)))
    node, warnings = ns.register(reg("box", device(0), device(1), device(2)), NOW)
    assert [g.id for g in node.gpus] == ["g0", "g1"]
    assert warnings == [
        "config lists 2 GPUs for node box but the agent found 3: the extra GPUs are not "
        "scheduled; add them to the config"
    ]
    node, warnings = ns.register(reg("box", device(0)), NOW)
    assert [g.id for g in node.gpus] == ["g0", "g1"]
    assert len(warnings) == 1
    assert warnings[0].startswith("config lists 2 GPUs for node box but the agent found 1: g1 ")
    assert "stay in the topology" in warnings[0]


def test_config_reload_keeps_agent_nodes_and_takes_over_named_ones(
    db: Store, ns: NodeStore
) -> None:
    sync(db, demo_topology())
    ns.register(reg("gpu-01", device(0)), NOW)
    ns.register(reg("gpu-02", device(0)), NOW)
    sync(db, demo_topology())  # a reload that names neither
    assert [n.id for n in topology(db).nodes] == ["node-a", "node-b", "gpu-01", "gpu-02"]
    assert not any(g.startswith("gpu-0") for g in retired_gpus(db))

    taken = Topology((Node("gpu-02", "Two", (Gpu("gpu-02-gpu0", "L4"), Gpu("gpu-02-x"))),))
    sync(db, taken)
    nodes = topology(db).nodes
    assert [n.id for n in nodes] == ["gpu-02", "gpu-01"]  # config nodes first
    assert nodes[0].gpus == (
        Gpu("gpu-02-gpu0", "L4", 0, "GPU-0000", 81559),
        Gpu("gpu-02-x", index=1),
    )
    # Now a config node: the agent is matched by position and warned about the missing GPU.
    node, warnings = ns.register(reg("gpu-02", device(0)), NOW)
    assert node.name == "Two" and [g.id for g in node.gpus] == ["gpu-02-gpu0", "gpu-02-x"]
    assert len(warnings) == 1
    # A config that drops it retires it; a later registration brings it back as an agent node.
    sync(db, demo_topology())
    assert "gpu-02" not in [n.id for n in topology(db).nodes]
    assert ns.status("gpu-02") is None
    node, warnings = ns.register(reg("gpu-02", device(0), device(1)), NOW)
    assert (node.name, [g.id for g in node.gpus], warnings) == (
        "gpu-02",
        ["gpu-02-gpu0", "gpu-02-gpu1"],
        [],
    )
    assert topology(db).nodes[-1].id == "gpu-02"


def test_a_gpu_id_of_another_live_node_is_refused(db: Store, ns: NodeStore) -> None:
    sync(db, Topology((Node("other", "other", (Gpu("gpu-01-gpu0"),)),)))
    with pytest.raises(Conflict) as raised:
        ns.register(reg("gpu-01", device(0)), NOW)
    assert raised.value.code == "gpu_id_taken"
    assert "already belongs to node 'other'" in raised.value.message
    assert [n.id for n in topology(db).nodes] == ["other"]  # rolled back


# ------------------------------------------------------------------ reports and liveness


def test_write_reports_updates_matching_sessions_only(db: Store, ns: NodeStore) -> None:
    ns.register(reg("gpu-01", device(0)), NOW)
    ns.register(reg("gpu-02", device(0)), NOW)
    assert ns.mark_offline("gpu-02", "s1", NOW + 10, NOW + 10)
    reports = [
        ReportWrite("gpu-01", "s1", NOW + 2.5, {"readings": [{"index": 0, "util": 97.0}]}),
        ReportWrite("gpu-02", "s1", NOW + 12.0, {"ok": True}),
        ReportWrite("gpu-03", "s1", NOW + 2.0, {}),  # never registered
        ReportWrite("gpu-01", "stale", NOW + 3.0, {"lost": True}),  # an old session
    ]
    assert ns.write_reports(reports) == 2
    one, two = ns.status("gpu-01"), ns.status("gpu-02")
    assert one is not None and two is not None
    assert (one.last_seen, one.report) == (NOW + 2.5, {"readings": [{"index": 0, "util": 97.0}]})
    assert (two.online, two.offline_since, two.last_seen) == (True, None, NOW + 12.0)
    assert ns.write_reports([]) == 0
    assert [s.node_id for s in ns.statuses()] == ["gpu-01", "gpu-02"]


def test_late_or_old_reports_do_not_undo_newer_state(db: Store, ns: NodeStore) -> None:
    ns.register(reg("gpu-01", device(0)), NOW)
    assert ns.write_reports([ReportWrite("gpu-01", "s1", NOW + 4.0, {"v": 2})]) == 1
    # An older report (another process held it) does not overwrite the newer one.
    assert ns.write_reports([ReportWrite("gpu-01", "s1", NOW + 3.0, {"v": 1})]) == 0
    assert ns.mark_offline("gpu-01", "s1", NOW + 5, NOW + 10)
    # Received before the offline mark, written behind after it: the node stays offline.
    assert ns.write_reports([ReportWrite("gpu-01", "s1", NOW + 4.5, {"v": 3})]) == 1
    status = ns.status("gpu-01")
    assert status is not None
    assert (status.online, status.offline_since, status.report) == (False, NOW + 10, {"v": 3})
    assert not ns.mark_offline("gpu-01", "s1", NOW + 5, NOW + 11)
    # Received after it: the node is back.
    assert ns.write_reports([ReportWrite("gpu-01", "s1", NOW + 10.5, {"v": 4})]) == 1
    status = ns.status("gpu-01")
    assert status is not None and (status.online, status.offline_since) == (True, None)


def test_write_reports_of_many_nodes(db: Store, ns: NodeStore) -> None:
    for i in range(30):
        ns.register(reg(f"n{i:03d}", device(0)), NOW)
    reports = [ReportWrite(f"n{i:03d}", "s1", NOW + 1.0, {"i": i}) for i in range(30)]
    assert ns.write_reports(reports) == 30
    assert [s.report for s in ns.statuses()] == [{"i": i} for i in range(30)]


def test_mark_offline_acts_once(db: Store, ns: NodeStore) -> None:
    ns.register(reg("gpu-01", device(0)), NOW)
    assert not ns.mark_offline("gpu-01", "s1", NOW, NOW + 6)  # seen at NOW: not before
    assert not ns.mark_offline("gpu-01", "other", NOW + 6, NOW + 6)
    assert ns.mark_offline("gpu-01", "s1", NOW + 6, NOW + 7)
    assert not ns.mark_offline("gpu-01", "s1", NOW + 6, NOW + 7)  # the second process
    status = ns.status("gpu-01")
    assert status is not None and (status.online, status.offline_since) == (False, NOW + 7)
    assert not ns.mark_offline("nobody", "s1", NOW + 6, NOW + 7)


def test_forget(db: Store, ns: NodeStore) -> None:
    ns.register(reg("gpu-01", device(0)), NOW)
    assert ns.forget("gpu-01")
    assert not ns.forget("gpu-01")
    assert ns.status("gpu-01") is None and ns.statuses() == []
    assert ns.write_reports([ReportWrite("gpu-01", "s1", NOW + 1.0, {})]) == 0
    assert [n.id for n in topology(db).nodes] == ["gpu-01"]


# ------------------------------------------------------------------------------ migration


def test_migration_matches_the_tables_and_goes_down_and_up(db: Store, ns: NodeStore) -> None:
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diffs if _is_ours(d)] == []
    sync(db, demo_topology())
    ns.register(reg("gpu-01", device(0)), NOW)
    config = alembic_config()
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    inspector = sa.inspect(db.engine)
    assert not NEW_TABLES & set(inspector.get_table_names())
    assert "source" not in {c["name"] for c in inspector.get_columns("nodes")}
    upgrade(db)
    with db.read() as conn:
        sources = dict(conn.execute(sa.text("SELECT id, source FROM nodes")).all())
    assert sources == {"node-a": "config", "node-b": "config", "gpu-01": "config"}


def _is_ours(diff: object) -> bool:
    """Differences that touch what migration 0003 added (older tables are not checked)."""
    text = repr(diff)
    return any(name in text for name in (*NEW_TABLES, "'source'"))
