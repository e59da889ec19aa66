"""A simulated cluster driven by Hypothesis: jobs are submitted, cancelled and finish, users
book and release GPUs, nodes go down, time passes; after every step the planner's plan is
applied (starts run from now, preempted jobs leave after the grace period) and the ledger
rules are checked against an independent, naive model. At the end the cluster drains: every
job that can ever run must have run."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from planner_kit import NOW, as_running, node

from procplan.core.jobs import (
    OPEN_END,
    Job,
    NodeState,
    Plan,
    Policy,
    Reason,
    Snapshot,
    Tenant,
)
from procplan.core.model import Booking, Topology
from procplan.core.planner import plan
from procplan.core.timeutil import HOUR, MINUTE

TOPOLOGY = Topology(
    (node("n0", 4, "A100", 80_000), node("n1", 4, "H100", 80_000), node("n2", 2, "A100", 40_000))
)
NODES = {n.id: n for n in TOPOLOGY.nodes}
USERS = ("alice", "bob", "carol")
TENANTS = {
    "t1": Tenant("t1", max_gpus=4, allow_borrow=True),
    "t2": Tenant("t2", max_jobs=2, allow_borrow=False, max_gpus=6),
    "t3": Tenant("t3", allow_preemption=False),
}
POLICY = Policy(
    weight_age=500.0,
    max_age_s=2 * HOUR,
    weight_fairshare=200.0,
    min_runtime_s=5 * MINUTE,
    preempt_grace_s=30,
    booking_warning_s=10 * MINUTE,
    reserve_depth=5,
)
GRACE = POLICY.preempt_grace_s
OPEN_RUN = 3 * HOUR  # open-ended jobs in this simulation finish after this long
PLACEMENT_REASONS = {Reason.RESOURCES, Reason.BOOKED, Reason.PRIORITY, Reason.PREEMPTING}


def gpu_node(gpu_id: str) -> str:
    return gpu_id.rsplit("-", 1)[0]


def claim_end(job: Job) -> int:
    assert job.started_at is not None
    return OPEN_END if job.time_limit_s is None else job.started_at + job.time_limit_s


def own(booking: Booking, job: Job) -> bool:
    return booking.user == job.user or booking.id == job.booking_id


def gpu_fits(job: Job, gpu_id: str) -> bool:
    gpu = next(g for g in NODES[gpu_node(gpu_id)].gpus if g.id == gpu_id)
    if job.gpu_kind is not None and gpu.kind.lower() != job.gpu_kind.lower():
        return False
    return job.gpu_memory_mb is None or (gpu.memory_mb or 0) >= job.gpu_memory_mb


class Cluster(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.pending: dict[int, Job] = {}
        self.running: dict[int, Job] = {}
        self.bookings: dict[int, Booking] = {}
        self.down: set[str] = set()
        self.ran: set[int] = set()
        self.next_id = 1
        self.last: Plan = Plan()
        self.replan()

    # -- the naive model ------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return Snapshot(
            topology=TOPOLOGY,
            bookings=tuple(self.bookings.values()),
            running=tuple(self.running.values()),
            pending=tuple(self.pending.values()),
            tenants=TENANTS,
            node_states={n: NodeState(up=False) for n in self.down},
        )

    def holder_end(self, job: Job) -> int:
        """When a running job's GPUs are free again in this simulation."""
        if job.preempt_at is not None:
            return job.preempt_at + GRACE
        assert job.started_at is not None
        if job.time_limit_s is None:
            return job.started_at + OPEN_RUN
        return job.started_at + job.time_limit_s

    def free_gpus_at(self, job: Job, at: int, gone: set[int]) -> dict[str, list[str]]:
        """Per up node, GPUs ``job`` could use from ``at`` (naively, from scratch)."""
        held = {
            g
            for r in self.running.values()
            if r.id not in gone and self.holder_end(r) > at
            for g in r.gpu_ids
        }
        end = at + 1 if job.time_limit_s is None else at + job.time_limit_s
        out: dict[str, list[str]] = {}
        for node_id, n in NODES.items():
            if node_id in self.down or (job.node_id and job.node_id != node_id):
                continue
            out[node_id] = [
                g.id
                for g in n.gpus
                if g.id not in held
                and gpu_fits(job, g.id)
                and not any(
                    g.id in b.gpu_ids and not own(b, job) and b.start < end and b.end > at
                    for b in self.bookings.values()
                )
                and (job.booking_id is None or g.id in self.booked_gpus(job.booking_id))
            ]
        return out

    def booked_gpus(self, booking_id: int) -> tuple[str, ...]:
        booking = self.bookings.get(booking_id)
        active = booking is not None and booking.start <= self.now < booking.end
        return booking.gpu_ids if booking is not None and active else ()

    def could_start(self, job: Job, at: int, gone: set[int]) -> bool:
        per = job.gpu_count // job.nodes
        free = self.free_gpus_at(job, at, gone)
        return sum(len(gpus) >= per for gpus in free.values()) >= job.nodes

    # -- applying plans -------------------------------------------------------------------

    def replan(self) -> None:
        result = plan(self.snapshot(), self.now, POLICY)
        self.check_plan(result)
        preemptors = {p.for_job_id for p in result.preemptions if p.for_job_id is not None}
        for start in result.starts:
            job = self.pending.pop(start.job_id)
            self.running[job.id] = as_running(job, start, self.now)
            self.ran.add(job.id)
        for stop in result.preemptions:
            victim = self.running[stop.job_id]
            assert victim.preempt_at is None, "preempted twice"
            self.running[victim.id] = replace(victim, preempt_at=self.now)
        victims = {p.job_id for p in result.preemptions}
        for job_id in preemptors:  # once its victims are gone it fits (this plan's starts too)
            assert self.could_start(self.pending[job_id], self.now + GRACE, victims)
        self.last = result

    def check_plan(self, result: Plan) -> None:
        started = {s.job_id for s in result.starts}
        assert started | set(result.pending) == set(self.pending)
        assert not started & set(result.pending)
        positions = sorted(info.position for info in result.pending.values())
        assert positions == list(range(1, len(positions) + 1))
        for stop in result.preemptions:
            if stop.for_job_id is not None:
                assert result.pending[stop.for_job_id].reason is Reason.PREEMPTING
        load = {n: sum(n in j.node_ids for j in self.running.values()) for n in NODES}
        for start in result.starts:
            job = self.pending[start.job_id]
            assert len(start.gpu_ids) == job.gpu_count
            self.check_nodes(job, start.node_ids, load)
            assert start.claim_end == (
                OPEN_END if job.time_limit_s is None else self.now + job.time_limit_s
            )
            free = self.free_gpus_at(job, self.now, set())
            assert all(g in free.get(gpu_node(g), ()) for g in start.gpu_ids)
            counts = [sum(gpu_node(g) == n for g in start.gpu_ids) for n in start.node_ids]
            assert len(set(start.node_ids)) == len(start.node_ids)
            if job.gpu_count:
                assert counts == [job.gpu_count // job.nodes] * job.nodes

    def check_nodes(self, job: Job, node_ids: tuple[str, ...], load: dict[str, int]) -> None:
        """Every batch job, GPUs or not, runs on ``nodes`` distinct up nodes (its pinned one
        when pinned); a free-floating CPU-only job on the up node running the fewest jobs so
        far (this plan's earlier starts included), ties by config order."""
        assert len(node_ids) == job.nodes and not self.down & set(node_ids), (job, node_ids)
        assert job.node_id is None or node_ids == (job.node_id,)
        if job.gpu_count == 0 and job.node_id is None and job.booking_id is None:
            up = [(load[n], i, n) for i, n in enumerate(NODES) if n not in self.down]
            assert list(node_ids) == sorted(n for _, _, n in sorted(up)[: job.nodes])
        for n in node_ids:
            load[n] += 1

    # -- rules ----------------------------------------------------------------------------

    @rule(
        user=st.sampled_from(USERS),
        tenant=st.sampled_from(sorted(TENANTS)),
        shape=st.sampled_from(
            [(1, 1)] * 4 + [(2, 1)] * 3 + [(4, 1), (4, 2), (2, 2), (0, 1), (8, 1)]
        ),
        kind=st.sampled_from([None] * 8 + ["a100", "H100", "V100"]),
        memory=st.sampled_from([None] * 5 + [60_000]),
        limit=st.sampled_from([None, 600, HOUR, HOUR, 3 * HOUR]),
        priority=st.sampled_from([0, 100, 100, 500]),
        pin=st.sampled_from([None] * 8 + ["n0", "n2", "nowhere"]),
        use_booking=st.booleans(),
    )
    def submit(
        self,
        user: str,
        tenant: str,
        shape: tuple[int, int],
        kind: str | None,
        memory: int | None,
        limit: int | None,
        priority: int,
        pin: str | None,
        use_booking: bool,
    ) -> None:
        mine = [b.id for b in self.bookings.values() if b.user == user]
        count, nodes = shape
        self.pending[self.next_id] = Job(
            id=self.next_id,
            user=user,
            tenant=tenant,
            priority=priority,
            gpu_count=count,
            nodes=nodes,
            gpu_kind=kind,
            gpu_memory_mb=memory,
            time_limit_s=limit,
            node_id=pin if nodes == 1 else None,
            booking_id=mine[0] if use_booking and mine and nodes == 1 else None,
            submitted_at=self.now,
        )
        self.next_id += 1
        self.replan()

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        del self.pending[data.draw(st.sampled_from(sorted(self.pending)))]
        self.replan()

    @precondition(lambda self: self.running)
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        del self.running[data.draw(st.sampled_from(sorted(self.running)))]
        self.replan()

    @rule(
        user=st.sampled_from(USERS),
        node_id=st.sampled_from(sorted(NODES)),
        width=st.integers(1, 2),
        offset=st.sampled_from([0, 60, 5 * MINUTE, 30 * MINUTE, HOUR, 4 * HOUR]),
        hours=st.integers(1, 3),
    )
    def book(self, user: str, node_id: str, width: int, offset: int, hours: int) -> None:
        gpus = tuple(g.id for g in NODES[node_id].gpus[:width])
        start, end = self.now + offset, self.now + offset + hours * HOUR
        for other in self.bookings.values():  # rule 1: bookings never overlap
            if set(gpus) & set(other.gpu_ids) and other.start < end and start < other.end:
                return
        for job in self.running.values():  # rule 4: only over jobs that end before it
            holds = set(gpus) & set(job.gpu_ids)
            fine = job.time_limit_s is None or job.user == user or claim_end(job) <= start
            if holds and not fine:
                return
        booking_id = 1000 + self.next_id
        self.next_id += 1
        self.bookings[booking_id] = Booking(booking_id, node_id, gpus, start, end, user, "X")
        self.replan()

    @precondition(lambda self: self.bookings)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        booking_id = data.draw(st.sampled_from(sorted(self.bookings)))
        booking = self.bookings[booking_id]
        if booking.start >= self.now:
            del self.bookings[booking_id]
        else:
            self.bookings[booking_id] = booking._replace(end=self.now)
        self.replan()

    @rule(node_id=st.sampled_from(sorted(NODES)))
    def toggle_node(self, node_id: str) -> None:
        self.down ^= {node_id}
        self.replan()

    @rule(seconds=st.sampled_from([1, 30, 5 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR]))
    def tick(self, seconds: int) -> None:
        self.advance(self.now + seconds)

    def advance(self, now: int) -> None:
        self.now = now
        self.running = {i: j for i, j in self.running.items() if self.holder_end(j) > now}
        self.bookings = {i: b for i, b in self.bookings.items() if b.end > now}
        self.replan()

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def no_gpu_held_twice(self) -> None:
        held = [g for job in self.running.values() for g in job.gpu_ids]
        assert len(held) == len(set(held))

    @invariant()
    def no_job_on_a_foreign_active_booking(self) -> None:
        for job in self.running.values():
            for b in self.bookings.values():
                active = b.start <= self.now < b.end
                if active and not own(b, job) and set(b.gpu_ids) & set(job.gpu_ids):
                    assert job.time_limit_s is None and job.preempt_at is not None

    @invariant()
    def quotas_hold_except_borrowed(self) -> None:
        for tenant in TENANTS.values():
            jobs = [j for j in self.running.values() if j.tenant == tenant.id]
            if tenant.max_jobs is not None:
                assert len(jobs) <= tenant.max_jobs
            if tenant.max_gpus is not None:
                assert sum(j.gpu_count for j in jobs if not j.borrowed) <= tenant.max_gpus

    @invariant()
    def the_first_blocked_job_gets_an_estimate(self) -> None:
        if any(j.time_limit_s is None for j in self.running.values()):
            return  # open-ended holders may hold the only fitting GPUs forever
        blocked = sorted(
            (info.position, job_id)
            for job_id, info in self.last.pending.items()
            if info.reason in PLACEMENT_REASONS and not self.borrowing(self.pending[job_id])
        )
        if not blocked:
            return
        job = self.pending[blocked[0][1]]
        info = self.last.pending[job.id]
        assert info.estimated_start is not None, (job, info)
        assert info.estimated_start >= self.now
        if info.reason is not Reason.PREEMPTING:
            assert self.could_start(job, info.estimated_start, set()), (job, info)

    def borrowing(self, job: Job) -> bool:
        """Over its tenant's GPU quota and allowed to borrow: it waits for idle GPUs with a
        placement reason (issue #19) but gets no reservation."""
        tenant = TENANTS[job.tenant]
        if tenant.max_gpus is None or not tenant.allow_borrow:
            return False
        used = sum(j.gpu_count for j in self.running.values() if j.tenant == job.tenant)
        return used + job.gpu_count > tenant.max_gpus

    def teardown(self) -> None:
        """Drain: no more submissions, nodes come back, time passes; every job that can ever
        run must run."""
        self.down.clear()
        for _ in range(100):
            if not self.pending:
                break
            ends = [self.holder_end(j) for j in self.running.values()]
            ends += [t for b in self.bookings.values() for t in (b.start, b.end)]
            self.advance(min([e for e in ends if e > self.now], default=self.now + HOUR))
        for job_id, info in self.last.pending.items():
            job = self.pending[job_id]
            never = {Reason.UNSATISFIABLE, Reason.BOOKING_INACTIVE}
            over = job.tenant == "t2" and job.gpu_count > 6
            assert info.reason in never or over, (job, info)


Cluster.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCluster = Cluster.TestCase
