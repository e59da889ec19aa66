"""Nodes and GPUs in the database: the persisted topology, with retirement instead of delete.

A GPU or node that disappears from the configuration is marked retired so that its bookings
keep their history; reappearing revives the same row (same primary key).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select, update

from procplan.core.model import Gpu, Node, Topology
from procplan.core.timeutil import Instant
from procplan.store.tables import gpus, meta, nodes


def load_topology(conn: Connection) -> Topology:
    """Active nodes and GPUs in configuration order."""
    node_rows = conn.execute(
        select(nodes.c.pk, nodes.c.id, nodes.c.name)
        .where(nodes.c.retired.is_(False))
        .order_by(nodes.c.position, nodes.c.pk)
    ).all()
    gpu_rows = conn.execute(
        select(gpus.c.node_pk, gpus.c.id, gpus.c.kind, gpus.c.uuid, gpus.c.memory_mb)
        .where(gpus.c.retired.is_(False))
        .order_by(gpus.c.node_pk, gpus.c.position, gpus.c.pk)
    ).all()
    by_node: dict[int, list[Gpu]] = {}
    for node_pk, gpu_id, kind, uuid, memory_mb in gpu_rows:
        members = by_node.setdefault(node_pk, [])
        members.append(Gpu(gpu_id, kind, len(members), uuid, memory_mb))
    return Topology(
        tuple(Node(node_id, name, tuple(by_node.get(pk, ()))) for pk, node_id, name in node_rows)
    )


TOPOLOGY_VERSION = select(meta.c.value).where(meta.c.key == "topology_version")


def topology_version(conn: Connection) -> int:
    """A counter bumped by every topology change (other processes reload when it moves)."""
    return int(conn.execute(TOPOLOGY_VERSION).scalar() or 0)


def sync_topology(conn: Connection, topology: Topology, now: Instant) -> None:
    """Make the database topology equal ``topology``: upsert, reorder, retire the rest."""
    node_pks = _sync_nodes(conn, topology.nodes, now)
    _sync_gpus(conn, topology.nodes, node_pks, now)
    conn.execute(
        update(meta).where(meta.c.key == "topology_version").values(value=meta.c.value + 1)
    )


def _sync_nodes(conn: Connection, wanted: Iterable[Node], now: Instant) -> dict[str, int]:
    existing = {row.id: row.pk for row in conn.execute(select(nodes.c.pk, nodes.c.id))}
    keep: dict[str, int] = {}
    for position, node in enumerate(wanted):
        values = {"name": node.name, "position": position, "retired": False}
        pk = existing.get(node.id)
        if pk is None:
            pk = conn.execute(
                nodes.insert().values(id=node.id, created_at=now, **values).returning(nodes.c.pk)
            ).scalar_one()
        else:
            conn.execute(update(nodes).where(nodes.c.pk == pk).values(**values))
        keep[node.id] = pk
    retired = [pk for node_id, pk in existing.items() if node_id not in keep]
    if retired:
        conn.execute(update(nodes).where(nodes.c.pk.in_(retired)).values(retired=True))
    return keep


def _sync_gpus(
    conn: Connection, wanted: Iterable[Node], node_pks: dict[str, int], now: Instant
) -> None:
    existing = {row.id: row.pk for row in conn.execute(select(gpus.c.pk, gpus.c.id))}
    seen: set[str] = set()
    for node in wanted:
        for position, gpu in enumerate(node.gpus):
            values = {
                "node_pk": node_pks[node.id],
                "position": position,
                "kind": gpu.kind,
                "uuid": gpu.uuid,
                "memory_mb": gpu.memory_mb,
                "retired": False,
            }
            pk = existing.get(gpu.id)
            if pk is None:
                conn.execute(gpus.insert().values(id=gpu.id, created_at=now, **values))
            else:
                conn.execute(update(gpus).where(gpus.c.pk == pk).values(**values))
            seen.add(gpu.id)
    retired = [pk for gpu_id, pk in existing.items() if gpu_id not in seen]
    if retired:
        conn.execute(update(gpus).where(gpus.c.pk.in_(retired)).values(retired=True))
