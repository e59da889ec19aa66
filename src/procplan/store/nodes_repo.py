"""Agent registrations and node status rows (ADR 0006).

A registration is the only agent message that may change the topology: it creates or updates
the node's GPU rows, in one transaction with the node's status row. Everything later
(heartbeats, written behind once a second by ``write_reports``; liveness by ``mark_offline``)
touches the status row only, so the topology version moves only when hardware does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, case, delete, or_, select, update

from procplan.core.errors import Conflict
from procplan.core.model import UNSPECIFIED_KIND, GpuDevice, Node
from procplan.core.notes import node_changed
from procplan.core.timeutil import Instant
from procplan.store.engine import Store
from procplan.store.outbox import enqueue
from procplan.store.tables import gpus, node_status, nodes, upsert_insert
from procplan.store.topology_repo import (
    AGENT,
    AGENT_POSITION_BASE,
    BUMP_TOPOLOGY_VERSION,
    CONFIG,
    TOPOLOGY_VERSION,
    gpu_rows,
    load_node,
)

__all__ = ["AgentRegistration", "NodeStatus", "NodeStore", "ReportWrite"]


@dataclass(frozen=True, slots=True)
class AgentRegistration:
    """What an agent says about itself when it (re)connects; ``session`` is the server's."""

    node_id: str
    hostname: str
    address: str
    session: str
    interval_s: float
    devices: tuple[GpuDevice, ...]
    agent: Mapping[str, object]  # version, reader, os_user, pid, ...


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A node's status row: ``last_seen`` is the server's receive time (epoch seconds)."""

    node_id: str
    session: str
    hostname: str
    address: str
    interval_s: float
    registered_at: int
    last_seen: float
    online: bool
    offline_since: int | None
    agent: dict[str, object]
    report: dict[str, object]


@dataclass(frozen=True, slots=True)
class ReportWrite:
    """One node's latest report, written behind by ``write_reports``."""

    node_id: str
    session: str
    last_seen: float
    report: Mapping[str, object]


_NODE_ROW = select(
    nodes.c.pk, nodes.c.name, nodes.c.position, nodes.c.retired, nodes.c.source, nodes.c.removed_at
).where(nodes.c.id == bindparam("node_id"))
_NODE_PK = select(nodes.c.pk).where(nodes.c.id == bindparam("node_id")).scalar_subquery()
_STATUS = select(
    nodes.c.id,
    node_status.c.session,
    node_status.c.hostname,
    node_status.c.address,
    node_status.c.interval_s,
    node_status.c.registered_at,
    node_status.c.last_seen,
    node_status.c.online,
    node_status.c.offline_since,
    node_status.c.agent,
    node_status.c.report,
).join_from(node_status, nodes)
_ACTIVE_STATUS = _STATUS.where(nodes.c.retired.is_(False))
# Bound names differ from column names: SQLAlchemy reserves those for the SET clause. A report
# never overwrites a newer one (two processes may both hold one for a node), and only one
# received after the node was marked offline brings it back: a report written behind late
# must not undo the offline mark that ended the node's jobs.
_REVIVES = or_(
    node_status.c.online.is_(True),
    node_status.c.offline_since.is_(None),
    node_status.c.offline_since <= bindparam("r_seen"),
)
_REPORT = (
    update(node_status)
    .where(node_status.c.node_pk == bindparam("r_pk"))
    .where(node_status.c.session == bindparam("r_session"))
    .where(node_status.c.last_seen <= bindparam("r_seen"))
    .values(
        last_seen=bindparam("r_seen"),
        report=bindparam("r_report"),
        online=case((_REVIVES, True), else_=False),
        offline_since=case((_REVIVES, None), else_=node_status.c.offline_since),
    )
)
_OFFLINE = (
    update(node_status)
    .where(node_status.c.node_pk == _NODE_PK)
    .where(node_status.c.session == bindparam("o_session"))
    .where(node_status.c.online.is_(True))
    .where(node_status.c.last_seen < bindparam("o_before"))
    .values(online=False, offline_since=bindparam("o_now"))
)


class NodeStore:
    """Registrations, status reads and the written-behind status updates of agent nodes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Node id → primary key. Node rows are never deleted, so an entry never goes stale.
        self._pks: dict[str, int] = {}

    # ---- registration -------------------------------------------------------------------

    def register(self, reg: AgentRegistration, now: Instant) -> tuple[Node, list[str]]:
        """Record a (re)registration; return the node as the topology now has it, and warnings.

        A config node keeps its GPU ids and learns uuids and memory by position; any other
        node becomes an agent node whose GPUs are exactly the devices found. The topology
        version moves only when a node or GPU row changed, so a reconnecting agent with the
        same devices makes no process reload the topology.
        """
        with self.store.write() as conn:
            # PostgreSQL: orders topology writers (see ``sync_topology``); SQLite holds the lock.
            conn.execute(TOPOLOGY_VERSION.with_for_update())
            row = conn.execute(_NODE_ROW, {"node_id": reg.node_id}).first()
            warnings: list[str] = []
            if row is not None and row.removed_at is not None:
                raise Conflict(
                    f"node '{reg.node_id}' was removed by an admin: it stays out of the "
                    f"cluster until `procplan node resume {reg.node_id}`",
                    code="node_removed",
                )
            if row is not None and row.source == CONFIG and not row.retired:
                pk = row.pk
                changed = _match_config_gpus(conn, pk, reg, warnings)
            else:
                pk, changed = _put_agent_node(conn, row, reg.node_id, now)
                changed = _put_agent_gpus(conn, pk, reg, now) or changed
            if changed:
                conn.execute(BUMP_TOPOLOGY_VERSION)
            _put_status(conn, self.store.dialect, pk, reg, now)
            node = load_node(conn, pk)
        self._pks[reg.node_id] = pk
        return node, warnings

    # ---- reads --------------------------------------------------------------------------

    def statuses(self) -> list[NodeStatus]:
        """Status rows of every node that is not retired, in node order."""
        with self.store.read() as conn:
            rows = conn.execute(_ACTIVE_STATUS.order_by(nodes.c.position, nodes.c.pk)).all()
        return [_status(row) for row in rows]

    def status(self, node_id: str) -> NodeStatus | None:
        """One node's status row (``None``: never registered, forgotten or retired)."""
        with self.store.read() as conn:
            row = conn.execute(_ACTIVE_STATUS.where(nodes.c.id == node_id)).first()
        return None if row is None else _status(row)

    # ---- written behind -----------------------------------------------------------------

    def write_reports(self, reports: Sequence[ReportWrite]) -> int:
        """Write the latest reports in one transaction; return how many rows matched.

        A report whose session is not the registered one (the agent re-registered elsewhere,
        or the node was forgotten), or older than the stored one, matches nothing and is
        dropped. A report brings an offline node back online only if it was received after
        the node was marked offline.
        """
        if not reports:
            return 0
        with self.store.write() as conn:
            pks = self._node_pks(conn, {r.node_id for r in reports})
            # In pk order: concurrent writers (PostgreSQL) lock rows in one order, no deadlock.
            known = sorted((r for r in reports if r.node_id in pks), key=lambda r: pks[r.node_id])
            params = [
                {
                    "r_pk": pks[r.node_id],
                    "r_session": r.session,
                    "r_seen": r.last_seen,
                    "r_report": _json(r.report),
                }
                for r in known
            ]
            if not params:
                return 0
            back = _coming_back(conn, known, pks)
            matched = int(conn.execute(_REPORT, params).rowcount)
            for node_id, seen in back:  # the admins hear of it with the change (ADR 0012)
                enqueue(conn, node_changed(node_id, True, int(seen)), int(seen))
            return matched

    def mark_offline(self, node_id: str, session: str, seen_before: float, now: Instant) -> bool:
        """Mark a node offline if it is online in ``session`` and was last seen before
        ``seen_before``; whether this call did it (so one process acts on a node going down).
        """
        params = {"node_id": node_id, "o_session": session, "o_before": seen_before, "o_now": now}
        with self.store.write() as conn:
            marked = bool(conn.execute(_OFFLINE, params).rowcount == 1)
            if marked:
                enqueue(conn, node_changed(node_id, False, now), now)
            return marked

    def forget(self, node_id: str) -> bool:
        """Drop a node's status row (the node and its GPUs stay); whether there was one."""
        with self.store.write() as conn:
            result = conn.execute(
                delete(node_status).where(node_status.c.node_pk == _NODE_PK), {"node_id": node_id}
            )
            return bool(result.rowcount > 0)

    def _node_pks(self, conn: Connection, node_ids: Iterable[str]) -> dict[str, int]:
        """Node pks from the cache; ids it misses are looked up once (unknown ones are left
        out of the answer)."""
        missing = [node_id for node_id in node_ids if node_id not in self._pks]
        if missing:
            found = conn.execute(select(nodes.c.id, nodes.c.pk).where(nodes.c.id.in_(missing)))
            self._pks.update({node_id: pk for node_id, pk in found})
        return self._pks


def _coming_back(
    conn: Connection, reports: Sequence[ReportWrite], pks: Mapping[str, int]
) -> list[tuple[str, float]]:
    """The offline nodes these reports bring back (received after the node went offline, in
    its registered session): ``_REPORT``'s revive rule, asked before it runs."""
    down = conn.execute(
        select(
            node_status.c.node_pk,
            node_status.c.session,
            node_status.c.offline_since,
            node_status.c.last_seen,
        )
        .where(node_status.c.node_pk.in_([pks[r.node_id] for r in reports]))
        .where(node_status.c.online.is_(False))
    ).all()
    if not down:
        return []
    state = {pk: (session, since, seen) for pk, session, since, seen in down}
    back = []
    for r in reports:
        found = state.get(pks[r.node_id])
        if found is None or found[0] != r.session:
            continue
        if (found[1] or 0) <= r.last_seen and found[2] <= r.last_seen:
            back.append((r.node_id, r.last_seen))
    return back


def _put_agent_node(conn: Connection, row: Any, node_id: str, now: Instant) -> tuple[int, bool]:
    """Create the agent node, or turn an existing row (agent, retired) into a live agent
    node; return its pk and whether the row changed."""
    if row is None:
        pk = conn.execute(
            nodes.insert()
            .values(
                id=node_id, name=node_id, position=0, retired=False, source=AGENT, created_at=now
            )
            .returning(nodes.c.pk)
        ).scalar_one()
        conn.execute(
            update(nodes).where(nodes.c.pk == pk).values(position=AGENT_POSITION_BASE + pk)
        )
        return int(pk), True
    values = {
        "name": node_id,
        "position": AGENT_POSITION_BASE + row.pk,
        "retired": False,
        "source": AGENT,
    }
    if not _differs(row, values):
        return int(row.pk), False
    conn.execute(update(nodes).where(nodes.c.pk == row.pk).values(**values))
    return int(row.pk), True


def _put_agent_gpus(conn: Connection, pk: int, reg: AgentRegistration, now: Instant) -> bool:
    """Make the node's live GPUs exactly the devices (``<node>-gpu<index>``, position = PCI
    index): revive or move rows of the same id, retire the rest; whether anything changed."""
    wanted = [device.as_gpu(reg.node_id) for device in reg.devices]
    existing = gpu_rows(conn, pk, [gpu.id for gpu in wanted])
    changed = False
    for gpu in wanted:
        values = {
            "node_pk": pk,
            "position": gpu.index,
            "kind": gpu.kind,
            "uuid": gpu.uuid,
            "memory_mb": gpu.memory_mb,
            "retired": False,
        }
        row = existing.get(gpu.id)
        if row is None:
            conn.execute(gpus.insert().values(id=gpu.id, created_at=now, **values))
        elif row.node_pk != pk and not row.retired:
            raise _gpu_taken(conn, gpu.id, row.node_pk, reg.node_id)
        elif _differs(row, values):
            conn.execute(update(gpus).where(gpus.c.pk == row.pk).values(**values))
        else:
            continue
        changed = True
    ids = {gpu.id for gpu in wanted}
    stale = [
        r.pk for r in existing.values() if r.node_pk == pk and not r.retired and r.id not in ids
    ]
    if stale:
        conn.execute(update(gpus).where(gpus.c.pk.in_(stale)).values(retired=True))
    return changed or bool(stale)


def _gpu_taken(conn: Connection, gpu_id: str, owner_pk: int, node_id: str) -> Conflict:
    owner = conn.execute(select(nodes.c.id).where(nodes.c.pk == owner_pk)).scalar_one()
    return Conflict(
        f"GPU id '{gpu_id}' already belongs to node '{owner}': run the agent on '{node_id}' "
        f"with another node id, or rename that GPU in the config",
        code="gpu_id_taken",
    )


def _match_config_gpus(
    conn: Connection, pk: int, reg: AgentRegistration, warnings: list[str]
) -> bool:
    """Teach a config node's GPUs (by position: config GPU i is device index i) their uuid,
    memory and, when the config left it unspecified, kind; warn about count mismatches."""
    rows = [r for r in gpu_rows(conn, pk, ()).values() if not r.retired]
    rows.sort(key=lambda r: (r.position, r.pk))
    devices = {device.index: device for device in reg.devices}
    changed, missing = False, []
    for position, row in enumerate(rows):
        device = devices.get(position)
        if device is None:
            missing.append(row.id)
            continue
        values: dict[str, object] = {"uuid": device.uuid, "memory_mb": device.memory_mb}
        if row.kind == UNSPECIFIED_KIND:
            values["kind"] = device.name
        if _differs(row, values):
            conn.execute(update(gpus).where(gpus.c.pk == row.pk).values(**values))
            changed = True
    counts = f"config lists {len(rows)} GPUs for node {reg.node_id} but the agent found"
    counts += f" {len(reg.devices)}"
    if any(index not in range(len(rows)) for index in devices):
        warnings.append(f"{counts}: the extra GPUs are not scheduled; add them to the config")
    if missing:
        warnings.append(
            f"{counts}: {', '.join(missing)} not found on the host; they stay in the topology "
            "(remove them from the config if they are gone)"
        )
    return changed


def _put_status(
    conn: Connection, dialect: str, pk: int, reg: AgentRegistration, now: Instant
) -> None:
    values: dict[str, object] = {
        "session": reg.session,
        "hostname": reg.hostname,
        "address": reg.address,
        "interval_s": reg.interval_s,
        "registered_at": now,
        "last_seen": float(now),
        "online": True,
        "offline_since": None,
        "agent": _json(reg.agent),
        "report": "{}",
    }
    insert = upsert_insert(dialect, node_status).values(node_pk=pk, **values)
    conn.execute(insert.on_conflict_do_update(index_elements=["node_pk"], set_=values))


def _differs(row: Any, values: Mapping[str, object]) -> bool:
    return any(getattr(row, name) != value for name, value in values.items())


def _json(value: Mapping[str, object]) -> str:
    return orjson.dumps(value if isinstance(value, dict) else dict(value)).decode()


def _object(text: str) -> dict[str, object]:
    value = orjson.loads(text)
    return value if isinstance(value, dict) else {}


def _status(row: Any) -> NodeStatus:
    return NodeStatus(
        node_id=row.id,
        session=row.session,
        hostname=row.hostname,
        address=row.address,
        interval_s=float(row.interval_s),
        registered_at=int(row.registered_at),
        last_seen=float(row.last_seen),
        online=bool(row.online),
        offline_since=None if row.offline_since is None else int(row.offline_since),
        agent=_object(row.agent),
        report=_object(row.report),
    )
