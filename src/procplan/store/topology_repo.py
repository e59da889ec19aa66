"""Nodes and GPUs in the database: the persisted topology, with retirement instead of delete.

A GPU or node that disappears from the configuration is marked retired so that its bookings
keep their history; reappearing revives the same row (same primary key). Nodes that an agent
registered (``source = 'agent'``, see ``nodes_repo``) are not the configuration's to retire:
a config reload keeps those it does not name and takes over those it does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from procplan.core.model import UNSPECIFIED_KIND, Gpu, Node, Topology
from procplan.core.timeutil import Instant
from procplan.store.tables import gpus, meta, nodes

CONFIG = "config"
AGENT = "agent"
# Agent nodes sort after every config node, in the order they first registered.
AGENT_POSITION_BASE = 1_000_000

_GPU_COLUMNS = (gpus.c.node_pk, gpus.c.id, gpus.c.kind, gpus.c.position, gpus.c.uuid)
_GPU_SELECT = (
    select(*_GPU_COLUMNS, gpus.c.memory_mb)
    .where(gpus.c.retired.is_(False))
    .order_by(gpus.c.node_pk, gpus.c.position, gpus.c.pk)
)


def load_topology(conn: Connection) -> Topology:
    """Active nodes and GPUs: config nodes in configuration order, then agent nodes."""
    node_rows = conn.execute(
        select(nodes.c.pk, nodes.c.id, nodes.c.name)
        .where(nodes.c.retired.is_(False))
        .order_by(nodes.c.position, nodes.c.pk)
    ).all()
    by_node: dict[int, list[Gpu]] = {}
    for row in conn.execute(_GPU_SELECT):
        by_node.setdefault(row.node_pk, []).append(_gpu(row))
    return Topology(
        tuple(Node(node_id, name, tuple(by_node.get(pk, ()))) for pk, node_id, name in node_rows)
    )


def load_node(conn: Connection, node_pk: int) -> Node:
    """One node as ``load_topology`` would show it (retired or not)."""
    node_id, name = conn.execute(
        select(nodes.c.id, nodes.c.name).where(nodes.c.pk == node_pk)
    ).one()
    rows = conn.execute(_GPU_SELECT.where(gpus.c.node_pk == node_pk))
    return Node(node_id, name, tuple(_gpu(row) for row in rows))


def _gpu(row: Any) -> Gpu:
    # The index is the stored position: the config position for config nodes (what
    # ``parse_topology`` sets), the PCI index for agent nodes (gaps stay gaps).
    return Gpu(row.id, row.kind, row.position, row.uuid, row.memory_mb)


TOPOLOGY_VERSION = select(meta.c.value).where(meta.c.key == "topology_version")
BUMP_TOPOLOGY_VERSION = (
    update(meta).where(meta.c.key == "topology_version").values(value=meta.c.value + 1)
)


def topology_version(conn: Connection) -> int:
    """A counter bumped by every topology change (other processes reload when it moves)."""
    return int(conn.execute(TOPOLOGY_VERSION).scalar() or 0)


def sync_topology(conn: Connection, topology: Topology, now: Instant) -> None:
    """Make the config nodes equal ``topology``: upsert, reorder, retire the config's rest.

    The version is bumped first: on PostgreSQL its row lock orders topology writers
    (config reloads and agent registrations) before either touches a node row.
    """
    conn.execute(BUMP_TOPOLOGY_VERSION)
    node_pks, agent_pks = _sync_nodes(conn, topology.nodes, now)
    _sync_gpus(conn, topology.nodes, node_pks, agent_pks, now)


def _sync_nodes(
    conn: Connection, wanted: Iterable[Node], now: Instant
) -> tuple[dict[str, int], set[int]]:
    """Upsert the config's nodes; return their pks and the pks of agent nodes left alone."""
    query = select(nodes.c.pk, nodes.c.id, nodes.c.source, nodes.c.removed_at)
    existing = {row.id: row for row in conn.execute(query)}
    keep: dict[str, int] = {}
    for position, node in enumerate(wanted):
        row = existing.get(node.id)
        removed = row is not None and row.removed_at is not None  # an admin's: until resume
        values = {"name": node.name, "position": position, "retired": removed, "source": CONFIG}
        if row is None:
            pk = conn.execute(
                nodes.insert().values(id=node.id, created_at=now, **values).returning(nodes.c.pk)
            ).scalar_one()
        else:
            pk = row.pk
            conn.execute(update(nodes).where(nodes.c.pk == pk).values(**values))
        keep[node.id] = pk
    unnamed = [row for node_id, row in existing.items() if node_id not in keep]
    retired = [row.pk for row in unnamed if row.source == CONFIG]
    if retired:
        conn.execute(update(nodes).where(nodes.c.pk.in_(retired)).values(retired=True))
    return keep, {row.pk for row in unnamed if row.source == AGENT}


def _sync_gpus(
    conn: Connection,
    wanted: Iterable[Node],
    node_pks: dict[str, int],
    agent_pks: set[int],
    now: Instant,
) -> None:
    query = select(gpus.c.pk, *_GPU_COLUMNS, gpus.c.memory_mb)
    existing = {row.id: row for row in conn.execute(query)}
    seen: set[str] = set()
    for node in wanted:
        for position, gpu in enumerate(node.gpus):
            row = existing.get(gpu.id)
            values = _config_gpu_values(gpu, node_pks[node.id], position, row)
            if row is None:
                conn.execute(gpus.insert().values(id=gpu.id, created_at=now, **values))
            else:
                conn.execute(update(gpus).where(gpus.c.pk == row.pk).values(**values))
            seen.add(gpu.id)
    retired = [
        row.pk
        for gpu_id, row in existing.items()
        if gpu_id not in seen and row.node_pk not in agent_pks
    ]
    if retired:
        conn.execute(update(gpus).where(gpus.c.pk.in_(retired)).values(retired=True))


def _config_gpu_values(gpu: Gpu, node_pk: int, position: int, row: Any) -> dict[str, object]:
    """A config GPU's row values. What the config leaves unsaid (uuid, memory, an unspecified
    kind) keeps what the node's agent reported, so a reload does not forget it until the
    agent registers again; a GPU that moves to another node forgets it."""
    kind, uuid, memory_mb = gpu.kind, gpu.uuid, gpu.memory_mb
    if row is not None and row.node_pk == node_pk and row.uuid is not None:
        uuid = uuid if uuid is not None else row.uuid
        memory_mb = memory_mb if memory_mb is not None else row.memory_mb
        kind = row.kind if kind == UNSPECIFIED_KIND else kind
    return {
        "node_pk": node_pk,
        "position": position,
        "kind": kind,
        "uuid": uuid,
        "memory_mb": memory_mb,
        "retired": False,
    }


def gpu_rows(conn: Connection, node_pk: int, ids: Sequence[str]) -> dict[str, Any]:
    """GPU rows of a node or with one of ``ids`` (any node, retired or not), by id."""
    query = select(gpus.c.pk, *_GPU_COLUMNS, gpus.c.memory_mb, gpus.c.retired).where(
        (gpus.c.node_pk == node_pk) | gpus.c.id.in_(list(ids))
    )
    return {row.id: row for row in conn.execute(query)}
