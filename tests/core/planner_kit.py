"""Builders for planner tests: small clusters, jobs, bookings and snapshots with a fixed now,
plus a naive, independent check of the ledger rules a placement must satisfy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from procplan.core.jobs import Job, JobState, NodeState, Policy, Snapshot, Start, Tenant
from procplan.core.model import Booking, Gpu, Node, Topology
from procplan.core.planner import plan
from procplan.core.timeutil import HOUR

NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC
POLICY = Policy(weight_age=0.0, weight_fairshare=0.0, min_runtime_s=0, preempt_grace_s=30)


def node(node_id: str, count: int, kind: str = "A100", memory: int | None = 80_000) -> Node:
    gpus = tuple(
        Gpu(id=f"{node_id}-g{i}", kind=kind, index=i, memory_mb=memory) for i in range(count)
    )
    return Node(id=node_id, name=node_id, gpus=gpus)


def topo(*sizes: int, kind: str = "A100") -> Topology:
    """Nodes ``n0, n1, ...`` with GPUs ``n0-g0, ...``."""
    return Topology(tuple(node(f"n{i}", size, kind) for i, size in enumerate(sizes)))


def job(job_id: int, user: str = "alice", **fields: object) -> Job:
    """A pending job; one GPU for an hour, submitted at NOW - id (so lower ids are older)."""
    values: dict[str, object] = {
        "gpu_count": 1,
        "time_limit_s": HOUR,
        "submitted_at": NOW - 1000 + job_id,
    }
    values.update(fields)
    return Job(id=job_id, user=user, **values)  # type: ignore[arg-type]


def running(
    job_id: int,
    gpus: Sequence[str],
    user: str = "bob",
    started_at: int = NOW - HOUR,
    time_limit_s: int | None = 4 * HOUR,
    **fields: object,
) -> Job:
    nodes = tuple(dict.fromkeys(g.rsplit("-", 1)[0] for g in gpus))
    base = job(
        job_id,
        user,
        gpu_count=len(gpus),
        nodes=max(len(nodes), 1),
        time_limit_s=time_limit_s,
        submitted_at=started_at - 10,
    )
    return replace(
        base,
        state=JobState.RUNNING,
        started_at=started_at,
        gpu_ids=tuple(gpus),
        node_ids=nodes,
        **fields,  # type: ignore[arg-type]
    )


def as_running(job: Job, start: Start, now: int) -> Job:
    """``job`` as running after the plan's ``start`` at ``now`` (what the store writes)."""
    return replace(
        job,
        state=JobState.RUNNING,
        started_at=now,
        node_ids=start.node_ids,
        gpu_ids=start.gpu_ids,
        borrowed=start.borrowed,
    )


def booking(
    booking_id: int, gpus: Sequence[str], start: int, end: int, user: str = "carol"
) -> Booking:
    node_id = gpus[0].rsplit("-", 1)[0]
    return Booking(booking_id, node_id, tuple(gpus), start, end, user, user[:2].upper())


def snap(
    topology: Topology,
    pending: Iterable[Job] = (),
    running_jobs: Iterable[Job] = (),
    bookings: Iterable[Booking] = (),
    tenants: Iterable[Tenant] = (),
    usage: dict[str, float] | None = None,
    down: Iterable[str] = (),
    foreign: Iterable[str] = (),
) -> Snapshot:
    return Snapshot(
        topology=topology,
        bookings=tuple(bookings),
        running=tuple(running_jobs),
        pending=tuple(pending),
        tenants={t.id: t for t in tenants},
        usage=usage or {},
        foreign_gpus=frozenset(foreign),
        node_states={n: NodeState(up=False) for n in down},
    )


def run(snapshot: Snapshot, now: int = NOW, policy: Policy = POLICY):  # type: ignore[no-untyped-def]
    return plan(snapshot, now, policy)


def started(result: object) -> dict[int, tuple[str, ...]]:
    """job id -> GPU ids of the plan's starts."""
    return {s.job_id: s.gpu_ids for s in result.starts}  # type: ignore[attr-defined]


def claim_ok(
    job_: Job,
    gpus: Iterable[str],
    start: int,
    bookings: Iterable[Booking],
    holders: dict[str, int],
) -> bool:
    """Naive ledger check: every GPU free by ``start`` (``holders``: GPU -> free-from) and no
    foreign booking in the claim (open-ended: none active at ``start``)."""
    end = start + 1 if job_.time_limit_s is None else start + job_.time_limit_s
    for g in gpus:
        if holders.get(g, start) > start:
            return False
        for b in bookings:
            own = b.user == job_.user or b.id == job_.booking_id
            if g in b.gpu_ids and not own and b.start < end and b.end > start:
                return False
    return True
