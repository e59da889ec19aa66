"""JobService: validation messages, tenants and membership, quota refusals, bookings named by
jobs, cancel/release/finish and their errors, status views, and the events they publish."""

from __future__ import annotations

from dataclasses import replace

import pytest

from procplan.core.bookings import BookingLimits
from procplan.core.errors import Conflict, DomainError, Forbidden, InvalidRequest, NotFound
from procplan.core.jobs import OPEN_END, JobKind, JobRequest, JobState, Plan, Start, Tenant
from procplan.core.model import BookingRequest, Gpu, Node, Topology
from procplan.core.timeutil import DAY
from procplan.core.topology import demo_topology
from procplan.core.views import ClusterCounts, LocalStatus
from procplan.service.bookings import BookingService
from procplan.service.events import Event, EventBus
from procplan.service.jobs import JobService, JobSettings
from procplan.store.engine import Store
from procplan.store.jobs_repo import JobFilter
from procplan.testing import FakeClock

NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC
HOUR = 3600
LOCAL = Node("here", "Here", tuple(Gpu(f"here-gpu{i}", "RTX", index=i) for i in range(2)))


class Calls:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: Event) -> None:
        self.count += 1


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def bookings(store: Store, clock: FakeClock) -> BookingService:
    service = BookingService(store, clock, BookingLimits())
    service.replace_topology(Topology((*demo_topology().nodes, LOCAL)))
    return service


@pytest.fixture
def changes() -> Calls:
    return Calls()


@pytest.fixture
def svc(store: Store, clock: FakeClock, bookings: BookingService, changes: Calls) -> JobService:
    settings = JobSettings(lease_ttl_s=30, local_node="here", local_host="h", max_array_size=5)
    events = EventBus()
    events.subscribe({Event.JOBS_CHANGED, Event.TENANTS_CHANGED}, changes)
    return JobService(store, clock, bookings, settings, events)


def req(user: str = "ada", **fields: object) -> JobRequest:
    return JobRequest(user=user, **fields)  # type: ignore[arg-type]


def refused(svc: JobService, request: JobRequest) -> DomainError:
    with pytest.raises(DomainError) as err:
        svc.submit(request)
    return err.value


def start(svc: JobService, job_id: int, *gpus: str, node: str = "node-a") -> None:
    plan = Plan(starts=(Start(job_id, (node,), gpus, OPEN_END),))
    assert svc.jobs.apply(plan, svc.clock.now(), 30).started


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("fields", "message", "code"),
    [
        ({"gpu_count": -1}, "gpu_count must be 0 or more (got -1)", "invalid_gpu_count"),
        ({"nodes": 0}, "nodes must be at least 1 (got 0)", "invalid_nodes"),
        (
            {"gpu_count": 3, "nodes": 2},
            "gpu_count must be a multiple of nodes",
            "invalid_gpu_count",
        ),
        ({"gpu_count": 9}, "requested 9 GPU(s) but the largest node has 8", "too_many_gpus"),
        (
            {"gpu_count": 5, "gpu_kind": "a100"},
            "requested 5 GPU(s) but the largest node has 4 (of kind a100)",
            "too_many_gpus",
        ),
        (
            {"gpu_count": 3, "node_id": "here"},
            "requested 3 GPU(s) but node 'here' has 2",
            "too_many_gpus",
        ),
        ({"gpu_kind": "TPU"}, "no node has GPUs of kind 'TPU' (kinds: A100, H100, RTX)", None),
        ({"gpu_count": 10, "nodes": 2}, "requested 2 nodes with 5 GPU(s) each but only 1", None),
        ({"node_id": "nowhere"}, "Unknown node id 'nowhere'", "unknown_node"),
        ({"time_limit_s": 0}, "time_limit_s must be positive (got 0)", "invalid_time_limit"),
        ({"time_limit_s": 31 * DAY}, "time limit must be at most 2592000 s (30 days)", None),
        ({"name": "x" * 300}, "name must be at most 256 characters", "too_long"),
        ({"array": tuple(range(6))}, "array has 6 tasks; at most 5 are allowed", "invalid_array"),
        ({"array": (1, 1)}, "array task indices must be distinct", "invalid_array"),
        ({"env": (("A", "x" * 70_000),)}, "env must be at most 65536 characters", "too_long"),
    ],
)
def test_validation_says_what_to_fix(
    svc: JobService, fields: dict[str, object], message: str, code: str | None
) -> None:
    error = refused(svc, req(**fields))
    assert isinstance(error, InvalidRequest) and error.status == 400
    assert error.message.startswith(message), error.message
    if code is not None:
        assert error.code == code


def test_zero_gpus_and_gangs_are_accepted(svc: JobService, changes: Calls) -> None:
    assert svc.submit(req(gpu_count=0))[0].gpu_count == 0
    gang = svc.submit(req(gpu_count=8, nodes=2, gpu_kind="any"))  # A100 + H100 nodes
    assert gang[0].nodes == 2 and changes.count == 2
    with pytest.raises(InvalidRequest, match="--gpu-type any"):  # by default one GPU model
        svc.submit(req(gpu_count=8, nodes=2))


def test_arrays_get_one_job_per_index(svc: JobService) -> None:
    created = svc.submit(req(name="sweep", array=(0, 2, 4)))
    assert [j.name for j in created] == ["sweep[0]", "sweep[2]", "sweep[4]"]
    assert {j.array_id for j in created} == {created[0].id}


def test_interactive_jobs_get_a_lease(svc: JobService) -> None:
    [job] = svc.submit(req(kind=JobKind.INTERACTIVE, pid=5, host="h"))
    assert job.lease_expires_at == NOW + 30
    assert svc.submit(req())[0].lease_expires_at is None


# ---------------------------------------------------------------------------------- tenants


def test_tenant_resolution_and_membership(svc: JobService) -> None:
    assert svc.submit(req())[0].tenant == "default"
    svc.create_tenant(Tenant("lab", max_gpus=4))
    svc.create_tenant(Tenant("other"))
    svc.add_member("lab", "ada")
    svc.add_member("other", "ada")
    svc.add_member("lab", "ada")  # idempotent
    assert svc.members("lab") == ["ada"]
    assert svc.submit(req())[0].tenant == "lab"  # first membership
    assert svc.submit(req(tenant="other"))[0].tenant == "other"
    error = refused(svc, req("bob", tenant="lab"))
    assert isinstance(error, Forbidden) and error.code == "not_member"
    assert "not a member of tenant 'lab'" in error.message
    unknown = refused(svc, req(tenant="ghost"))
    assert isinstance(unknown, NotFound) and unknown.code == "unknown_tenant"
    svc.remove_member("lab", "ada")
    assert svc.members("lab") == []
    with pytest.raises(NotFound):
        svc.remove_member("lab", "ada")


def test_tenant_crud(svc: JobService, changes: Calls) -> None:
    created = svc.create_tenant(Tenant("lab", max_gpus=4, fair_share_weight=2.0, email="a@b"))
    assert created == replace(
        Tenant("lab", max_gpus=4, fair_share_weight=2.0, email="a@b"), created_at=NOW
    )
    with pytest.raises(Conflict) as err:
        svc.create_tenant(Tenant("lab"))
    assert err.value.code == "tenant_exists"
    updated = svc.update_tenant("lab", {"max_gpus": None, "allow_borrow": False})
    assert (updated.max_gpus, updated.allow_borrow) == (None, False)
    assert svc.get_tenant("lab") == updated
    assert [t.id for t in svc.list_tenants()] == ["default", "lab"]
    with pytest.raises(InvalidRequest, match="max_gpus must be a whole number >= 0"):
        svc.update_tenant("lab", {"max_gpus": -1})
    with pytest.raises(InvalidRequest, match="unknown tenant field 'usage_gpu_s'"):
        svc.update_tenant("lab", {"usage_gpu_s": 5})
    with pytest.raises(InvalidRequest, match="fair_share_weight must be a number > 0"):
        svc.create_tenant(Tenant("bad", fair_share_weight=0))
    with pytest.raises(NotFound):
        svc.get_tenant("ghost")
    with pytest.raises(NotFound):
        svc.update_tenant("ghost", {"max_gpus": 1})
    assert changes.count == 2


def test_quota_refuses_only_what_can_never_fit(svc: JobService) -> None:
    svc.create_tenant(Tenant("small", max_gpus=2, allow_borrow=False, max_gpu_memory_mb=1000))
    svc.create_tenant(Tenant("borrower", max_gpus=2, allow_borrow=True))
    running = svc.submit(req(tenant="small", gpu_count=2))[0]
    start(svc, running.id, "node-a-gpu0", "node-a-gpu1")
    error = refused(svc, req(tenant="small", gpu_count=3))
    assert isinstance(error, Forbidden) and error.status == 403
    assert (
        error.message == "quota exceeded for tenant small: max_gpus requested=3, quota=2, current=2"
    )
    memory = refused(svc, req(tenant="small", gpu_memory_mb=2000))
    assert memory.message.startswith("quota exceeded for tenant small: max_gpu_memory_mb")
    assert "requested=2000, quota=1000" in memory.message
    assert svc.submit(req(tenant="small", gpu_count=2))  # fits the quota: waits, not refused
    svc.create_tenant(Tenant("cpu", max_cpu_cores=8))
    cores = refused(svc, req(tenant="cpu", extra={"cpu_cores": 16}))
    assert (
        cores.message
        == "quota exceeded for tenant cpu: max_cpu_cores requested=16, quota=8, current=0"
    )
    assert svc.submit(req(tenant="borrower", gpu_count=4))  # may borrow idle GPUs


def test_usage_per_tenant(svc: JobService, clock: FakeClock) -> None:
    job = svc.submit(req(gpu_count=2))[0]
    start(svc, job.id, "node-a-gpu0", "node-a-gpu1")
    usage = svc.tenant_usage()["default"]
    assert (usage.gpus, usage.jobs, usage.usage_gpu_s) == (2, 1, 0.0)
    clock.advance(100)
    svc.finish(job.id, JobState.COMPLETED)
    after = svc.tenant_usage()["default"]
    assert (after.gpus, after.jobs, after.usage_gpu_s) == (0, 0, 200.0)


# --------------------------------------------------------------------------------- bookings


def test_a_job_may_name_its_users_active_booking(
    svc: JobService, bookings: BookingService, clock: FakeClock
) -> None:
    booking = bookings.create(
        BookingRequest("node-b", NOW, NOW + HOUR, "ada", "AL", gpu_count=2), whole_hours=False
    )
    job = svc.submit(req(booking_id=booking.id, gpu_count=2))[0]
    assert job.node_id == "node-b" and job.booking_id == booking.id
    foreign = refused(svc, req("bob", booking_id=booking.id))
    assert isinstance(foreign, Forbidden) and foreign.code == "not_booking_owner"
    missing = refused(svc, req(booking_id=999))
    assert isinstance(missing, NotFound) and missing.code == "unknown_booking"
    mismatch = refused(svc, req(booking_id=booking.id, node_id="node-a"))
    assert isinstance(mismatch, InvalidRequest) and mismatch.code == "node_mismatch"
    too_big = refused(svc, req(booking_id=booking.id, gpu_count=9))
    assert isinstance(too_big, InvalidRequest)
    clock.advance(HOUR)
    over = refused(svc, req(booking_id=booking.id))
    assert isinstance(over, Conflict) and over.code == "booking_inactive"
    bookings.cancel(booking.id)
    assert refused(svc, req(booking_id=booking.id)).code == "booking_inactive"


# ---------------------------------------------------------------------------------- endings


def test_get_and_cancel(svc: JobService, changes: Calls) -> None:
    with pytest.raises(NotFound) as err:
        svc.get(42)
    assert (err.value.message, err.value.code) == ("Job '42' does not exist", "unknown_job")
    job = svc.submit(req())[0]
    assert svc.get(job.id) == job
    cancelled = svc.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED and changes.count == 2
    with pytest.raises(Conflict) as again:
        svc.cancel(job.id)
    assert again.value.code == "job_finished" and again.value.status == 409
    with pytest.raises(NotFound):
        svc.cancel(4242)
    running = svc.submit(req())[0]
    start(svc, running.id, "node-a-gpu0")
    assert svc.cancel(running.id).state is JobState.CANCELLED


@pytest.mark.parametrize(
    ("exit_code", "state"),
    [(None, JobState.COMPLETED), (0, JobState.COMPLETED), (3, JobState.FAILED)],
)
def test_release_maps_exit_codes(svc: JobService, exit_code: int | None, state: JobState) -> None:
    job = svc.submit(req(kind=JobKind.INTERACTIVE))[0]
    start(svc, job.id, "node-a-gpu0")
    released = svc.release(job.id, exit_code)
    assert (released.state, released.exit_code) == (state, exit_code)
    with pytest.raises(Conflict) as err:
        svc.release(job.id, 0)
    assert err.value.code == "job_finished"


def test_release_of_a_pending_job_cancels_it(svc: JobService) -> None:
    job = svc.submit(req())[0]
    assert svc.release(job.id, 0).state is JobState.CANCELLED


def test_heartbeat_does_not_wake_the_cycle(
    svc: JobService, clock: FakeClock, changes: Calls
) -> None:
    job = svc.submit(req(kind=JobKind.INTERACTIVE))[0]
    clock.advance(10)
    assert svc.heartbeat(job.id).lease_expires_at == NOW + 40
    assert changes.count == 1
    assert svc.version() == 1


# ------------------------------------------------------------------------------ status views


def test_cluster_and_local_status(svc: JobService, bookings: BookingService) -> None:
    bookings.create(
        BookingRequest("node-a", NOW, NOW + HOUR, "bob", "BO", gpu_ids=("node-a-gpu3",)),
        whole_hours=False,
    )
    bookings.create(
        BookingRequest("node-a", NOW + HOUR, NOW + 2 * HOUR, "bob", "BO", gpu_ids=("node-a-gpu2",)),
        whole_hours=False,
    )
    here = svc.submit(req(node_id="here"))[0]
    start(svc, here.id, "here-gpu1", node="here")
    svc.submit(req(node_id="here"))
    svc.submit(req())
    done = svc.submit(req())[0]
    svc.cancel(done.id)
    assert svc.cluster_status() == ClusterCounts(
        total_gpus=14,
        available_gpus=12,
        total_nodes=3,
        online_nodes=3,
        total_jobs=4,
        pending_jobs=2,
        running_jobs=1,
    )
    assert svc.local_status() == LocalStatus(
        node_id="here",
        gpus_total=2,
        gpus_allocated=(1,),
        jobs_running=1,
        jobs_queued=1,
        jobs_total=2,
    )
    listed, total = svc.list(JobFilter(node_id="here"))
    assert total == 2 and {j.id for j in listed} >= {here.id}
