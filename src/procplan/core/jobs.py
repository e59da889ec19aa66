"""Jobs, tenants and the planner's input and output, as immutable values.

The planner (``core.planner.plan``) is a pure function of a ``Snapshot`` and a ``Policy`` and
returns a ``Plan``; the service applies the plan in one transaction (DESIGN.md, "Architecture").
Everything here is plain data shared by the core, the store and the service, so that the three
agree on one vocabulary. Times are ``Instant`` (int seconds, UTC).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter
from types import MappingProxyType
from typing import NamedTuple, TypedDict

from procplan.core.model import Booking, Topology
from procplan.core.policy import Policy as Policy  # re-exported: most importers take it from here
from procplan.core.timeutil import Instant

# A job without a time limit claims ``[start, OPEN_END)``: open-ended (ledger rule 3).
OPEN_END: Instant = 1 << 62
# ``Job.extra`` key: the job's end ends its booking too (rule 5, --release-booking-on-exit).
RELEASE_BOOKING = "release_booking"

DEFAULT_TENANT = "default"


class Blockers(NamedTuple):
    """What a waiting job waits for, as the planner saw it (ids, ascending): the jobs that
    hold the GPUs it will get (running, being stopped for it, or queued ahead of it with a
    reservation there) and the bookings in the way (or its own booking, not begun yet)."""

    jobs: tuple[int, ...] = ()
    bookings: tuple[int, ...] = ()


NO_BLOCKERS = Blockers()


class JobState(StrEnum):
    """States of ``core.lifecycle``; the last five are terminal (``preempted`` and ``lost``
    batch jobs may be requeued, which moves them back to ``pending``)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"
    LOST = "lost"

    @property
    def is_finished(self) -> bool:
        return self not in (JobState.PENDING, JobState.RUNNING)


class JobKind(StrEnum):
    """``interactive``: the client runs the command and holds a lease (``procplan run``,
    ``/acquire``); ``batch``: the node agent runs it (``procplan submit``)."""

    INTERACTIVE = "interactive"
    BATCH = "batch"


# Named priority classes map onto the numeric scale the Go scheduler uses (100, 500, 1000).
PRIORITY_CLASSES: Mapping[str, int] = MappingProxyType(
    {"low": 0, "normal": 100, "high": 500, "urgent": 1000}
)
DEFAULT_PRIORITY = PRIORITY_CLASSES["normal"]
MAX_PRIORITY = 1_000_000


def parse_priority(value: object) -> int:
    """A class name (``low``/``normal``/``high``/``urgent``) or an integer in range."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key in PRIORITY_CLASSES:
            return PRIORITY_CLASSES[key]
        if key.lstrip("+-").isdigit():
            value = int(key)
    if isinstance(value, int) and not isinstance(value, bool):
        if -MAX_PRIORITY <= value <= MAX_PRIORITY:
            return value
        raise ValueError(f"priority must be between {-MAX_PRIORITY} and {MAX_PRIORITY}")
    names = ", ".join(PRIORITY_CLASSES)
    raise ValueError(f"priority must be an integer or one of {names}")


class Reason(StrEnum):
    """Why a pending job waits (Slurm's ``REASON`` column, in words people understand)."""

    PRIORITY = "Priority"  # higher-priority jobs go first
    RESOURCES = "Resources"  # not enough free GPUs now; estimated start says when
    BOOKED = "Booked"  # the free GPUs are booked by other users
    QUOTA_GPUS = "QuotaGpus"  # the tenant's GPU quota is used up (and no borrowing)
    QUOTA_JOBS = "QuotaJobs"  # the tenant's concurrent-job quota is used up
    PREEMPTING = "Preempting"  # victims were signalled; starts when they have exited
    MIN_RUNTIME = "MinRuntime"  # will preempt jobs once they have run ``min_runtime_s``
    NODE_DOWN = "NodeDown"  # the only nodes that could run it are down or draining
    NO_AGENT = "NoAgent"  # a batch job, and no node it fits has an agent to run it
    UNSATISFIABLE = "Unsatisfiable"  # no node can ever run it (size, kind, memory, node)
    BOOKING_INACTIVE = "BookingInactive"  # it names a booking that is not active now
    HELD = "Held"  # the cycle has not looked at it yet


REASON_TEXT: Mapping[Reason, str] = MappingProxyType(
    {
        Reason.PRIORITY: "waiting behind higher-priority jobs",
        Reason.RESOURCES: "waiting for GPUs to free up",
        Reason.BOOKED: "free GPUs are booked by other users",
        Reason.QUOTA_GPUS: "the tenant's GPU quota is in use",
        Reason.QUOTA_JOBS: "the tenant's concurrent-job quota is in use",
        Reason.PREEMPTING: "lower-priority jobs are being preempted for it",
        Reason.MIN_RUNTIME: (
            "waiting for lower-priority or borrowed jobs to reach their minimum runtime"
        ),
        Reason.NODE_DOWN: "the nodes that fit it are down or draining",
        Reason.NO_AGENT: "no node that fits it has an agent to run batch jobs",
        Reason.UNSATISFIABLE: "no node in the cluster can run it",
        Reason.BOOKING_INACTIVE: "the booking it names is not active now",
        Reason.HELD: "not scheduled yet",
    }
)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What was asked: fixed at submission (the store assigns the last two, ``array_id`` and
    ``submitted_at``) and never changed afterwards. Field meanings: see ``Job``."""

    user: str
    tenant: str = DEFAULT_TENANT
    kind: JobKind = JobKind.BATCH
    name: str = ""
    priority: int = DEFAULT_PRIORITY
    gpu_count: int = 1
    nodes: int = 1
    gpu_kind: str | None = None
    gpu_memory_mb: int | None = None
    time_limit_s: int | None = None
    node_id: str | None = None
    booking_id: int | None = None
    command: tuple[str, ...] = ()
    workdir: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    stdout_path: str | None = None
    stderr_path: str | None = None
    array_index: int | None = None
    extra: Mapping[str, object] = field(default_factory=dict)
    array_id: int | None = None
    submitted_at: Instant = 0


@dataclass(frozen=True, slots=True)
class JobStatus:
    """Where a job stands: everything the scheduler, its agent or its client change after
    submission (``Job.changed``). Field meanings: see ``Job``."""

    state: JobState = JobState.PENDING
    started_at: Instant | None = None
    ended_at: Instant | None = None
    node_ids: tuple[str, ...] = ()
    gpu_ids: tuple[str, ...] = ()
    borrowed: bool = False
    preempt_at: Instant | None = None
    reason: Reason | None = None
    estimated_start: Instant | None = None
    queue_position: int | None = None
    waits_for: Blockers = NO_BLOCKERS
    exit_code: int | None = None
    requeues: int = 0
    pid: int | None = None
    host: str | None = None
    lease_expires_at: Instant | None = None
    message: str = ""
    version: int = 0
    preemptions: int = 0
    preempted_by: int | None = None
    last_preempted_at: Instant | None = None


class StatusChange(TypedDict, total=False):
    """A change of some ``JobStatus`` fields (and only those): the one thing the store writes
    to a job after submission. The store turns the same mapping into the row's values and,
    through ``Job.changed``, into the new ``Job``, so that each change is stated once."""

    state: JobState
    started_at: Instant | None
    ended_at: Instant | None
    node_ids: tuple[str, ...]
    gpu_ids: tuple[str, ...]
    borrowed: bool
    preempt_at: Instant | None
    reason: Reason | None
    estimated_start: Instant | None
    queue_position: int | None
    waits_for: Blockers
    exit_code: int | None
    requeues: int
    pid: int | None
    host: str | None
    lease_expires_at: Instant | None
    message: str
    version: int
    preemptions: int
    preempted_by: int | None
    last_preempted_at: Instant | None


SPEC_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(JobSpec))
STATUS_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(JobStatus))
_STATUS_FIELD_SET = frozenset(STATUS_FIELDS)
# The values of the spec or status fields, in order, of a Job or of a JobSpec / JobStatus.
_spec_values = attrgetter(*SPEC_FIELDS)
_status_values = attrgetter(*STATUS_FIELDS)


@dataclass(frozen=True, slots=True)
class Job:
    """A request for GPUs, from submission to its end: an id, a ``JobSpec`` and a ``JobStatus``.

    The fields are flat (the planner reads attributes of thousands of jobs per cycle), but
    they split in two: ``spec`` (what was asked) never changes after submission; ``status``
    (where the job stands) changes only through ``changed``, which refuses any other field.
    That is the rule for the store: after submission it makes a changed job with ``changed``
    and nothing else (no ``dataclasses.replace``), from the same ``StatusChange`` it writes to
    the row. ``Job.of(id, spec, status)`` puts the parts together.

    ``gpu_count`` is the total; with ``nodes > 1`` (a multi-node gang) it is split evenly, so it
    must be a multiple of ``nodes``. ``node_id`` pins the job to one node (interactive jobs run
    where their client runs). ``booking_id`` names a booking whose GPUs the job may use (it
    must be the user's own, or the job is refused at submission). ``time_limit_s`` ``None``
    means open-ended: the claim is ``[start, OPEN_END)`` (ledger rule 3).
    """

    id: int
    # ---- the spec (``JobSpec``, in its order) -------------------------------------------
    user: str
    tenant: str = DEFAULT_TENANT
    kind: JobKind = JobKind.BATCH
    name: str = ""
    priority: int = DEFAULT_PRIORITY
    gpu_count: int = 1
    nodes: int = 1
    gpu_kind: str | None = None
    gpu_memory_mb: int | None = None
    time_limit_s: int | None = None
    node_id: str | None = None
    booking_id: int | None = None
    # Fields the planner ignores; the store keeps them and the APIs show them.
    command: tuple[str, ...] = ()
    workdir: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    stdout_path: str | None = None
    stderr_path: str | None = None
    array_index: int | None = None
    extra: Mapping[str, object] = field(default_factory=dict)
    # Assigned by the store at submission.
    array_id: int | None = None
    submitted_at: Instant = 0
    # ---- the status (``JobStatus``, in its order) ---------------------------------------
    state: JobState = JobState.PENDING
    started_at: Instant | None = None
    ended_at: Instant | None = None
    # Where it runs: GPU ids (cluster-wide unique), grouped by node in ``node_ids`` order.
    node_ids: tuple[str, ...] = ()
    gpu_ids: tuple[str, ...] = ()
    borrowed: bool = False  # started beyond its tenant's quota: first to be preempted
    preempt_at: Instant | None = None  # set when the planner decided to preempt it
    reason: Reason | None = None
    estimated_start: Instant | None = None
    queue_position: int | None = None  # 1-based place of a pending job, as last written
    waits_for: Blockers = NO_BLOCKERS  # what a pending job waits for, as last written
    exit_code: int | None = None
    requeues: int = 0
    pid: int | None = None  # the client's (interactive) or the agent's launched process
    host: str | None = None
    lease_expires_at: Instant | None = None
    message: str = ""
    version: int = 0  # ``jobs_version`` of the write that last changed this job
    # Preemption history (kept across requeues): how often the planner preempted it (the
    # ``max_preemptions`` cap), and the job it was last preempted for, and when (the thrash
    # guard: that pair does not swap GPUs again within ``thrash_window_s``).
    preemptions: int = 0
    preempted_by: int | None = None
    last_preempted_at: Instant | None = None

    @classmethod
    def of(cls, job_id: int, spec: JobSpec, status: JobStatus) -> Job:
        """The job ``job_id`` made of these two parts."""
        return cls(job_id, *_spec_values(spec), *_status_values(status))

    @property
    def spec(self) -> JobSpec:
        """What was asked (fixed after submission)."""
        return JobSpec(*_spec_values(self))

    @property
    def status(self) -> JobStatus:
        """Where the job stands."""
        return JobStatus(*_status_values(self))

    def changed(self, change: StatusChange) -> Job:
        """This job with ``change`` applied: the only way a job changes after submission.
        ``ValueError`` when ``change`` names anything but ``JobStatus`` fields (the spec,
        the id)."""
        wrong = change.keys() - _STATUS_FIELD_SET
        if wrong:
            raise ValueError(f"not job status fields (a job's spec never changes): {sorted(wrong)}")
        return dataclasses.replace(self, **change) if change else self

    @property
    def is_open_ended(self) -> bool:
        return self.time_limit_s is None

    @property
    def gpus_per_node(self) -> int:
        return self.gpu_count // max(self.nodes, 1)

    def claim_end(self, start: Instant) -> Instant:
        """End of the ledger claim of this job started at ``start``."""
        return OPEN_END if self.time_limit_s is None else start + self.time_limit_s


# ``Job.of``, ``spec`` and ``status`` construct by position: the layouts must agree.
if tuple(f.name for f in dataclasses.fields(Job)) != ("id", *SPEC_FIELDS, *STATUS_FIELDS):
    raise TypeError("Job's fields must be its id, then JobSpec's, then JobStatus's, in order")


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A submission as the APIs parsed it (types checked); ``service.jobs`` validates the
    rest (tenant, booking ownership, sizes against the topology) and the store assigns ids.

    ``array`` holds the task indices of a job array (``--array 0-99``): one job per index.
    ``pid``/``host`` identify the client process of an interactive job (PID-watched when
    ``host`` is the server's own host).
    """

    user: str
    kind: JobKind = JobKind.BATCH
    name: str = ""
    tenant: str | None = None  # None: the user's tenant (first membership), else "default"
    priority: int = DEFAULT_PRIORITY
    gpu_count: int = 1
    nodes: int = 1
    gpu_kind: str | None = None
    gpu_memory_mb: int | None = None
    time_limit_s: int | None = None
    node_id: str | None = None
    booking_id: int | None = None
    command: tuple[str, ...] = ()
    workdir: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    stdout_path: str | None = None
    stderr_path: str | None = None
    array: tuple[int, ...] | None = None
    pid: int | None = None
    host: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tenant:
    """A group with a quota and a fair-share weight. ``None`` quotas mean unlimited.

    ``allow_borrow``: its jobs may start beyond ``max_gpus`` on idle GPUs (marked borrowed and
    preempted first when another tenant needs its quota back). ``allow_preemption``: its jobs
    may preempt lower-priority jobs of anyone.
    """

    id: str
    max_gpus: int | None = None
    max_jobs: int | None = None
    fair_share_weight: float = 1.0
    allow_borrow: bool = True
    allow_preemption: bool = True
    priority_tier: int = 0
    email: str = ""
    max_gpu_memory_mb: int | None = None
    max_cpu_cores: int | None = None
    max_memory_mb: int | None = None
    created_at: Instant = 0


@dataclass(frozen=True, slots=True)
class NodeState:
    """What the agents report about a node (issue #4); a node without one is up."""

    up: bool = True
    draining: bool = False


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the planner reads, as of one instant (built by the store in one read).

    ``bookings``: active bookings overlapping ``[now, ∞)``. ``running``: jobs holding GPUs
    (state ``running``, including those already being preempted). ``pending``: jobs waiting.
    ``usage``: per tenant, GPU-seconds decayed to ``now`` of finished work (running jobs'
    usage is added by the planner). ``foreign_gpus``: GPU ids with processes the scheduler did
    not start. ``node_states``: by node id; missing means up. ``batch_nodes``: the nodes whose
    agent runs batch jobs (``None``: every node, as when no agents are in play).
    """

    topology: Topology
    bookings: tuple[Booking, ...] = ()
    running: tuple[Job, ...] = ()
    pending: tuple[Job, ...] = ()
    tenants: Mapping[str, Tenant] = field(default_factory=dict)
    usage: Mapping[str, float] = field(default_factory=dict)
    foreign_gpus: frozenset[str] = frozenset()
    node_states: Mapping[str, NodeState] = field(default_factory=dict)
    batch_nodes: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Start:
    """Start ``job_id`` now on these GPUs; the claim is ``[now, claim_end)``."""

    job_id: int
    node_ids: tuple[str, ...]
    gpu_ids: tuple[str, ...]
    claim_end: Instant
    borrowed: bool = False


@dataclass(frozen=True, slots=True)
class Preemption:
    """Stop ``job_id``: SIGTERM now, SIGKILL after the grace period; ``for_job_id`` is the job
    it makes room for (``None`` when a foreign booking begins). ``reason`` is for people."""

    job_id: int
    for_job_id: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Notice:
    """Warn the owner of a running open-ended job that a foreign booking starts at ``at``."""

    job_id: int
    booking_id: int
    at: Instant


@dataclass(frozen=True, slots=True)
class PendingInfo:
    """Why a pending job waits, its queue position (1-based), estimated start (or ``None``
    when unknown: beyond the reservation depth, or never without a change) and what it
    waits for (known where the start is: jobs with an estimate, its own booking)."""

    reason: Reason
    position: int
    estimated_start: Instant | None = None
    waits_for: Blockers = NO_BLOCKERS


@dataclass(frozen=True, slots=True)
class Plan:
    """What one cycle decides. ``pending`` covers every pending job not in ``starts``."""

    starts: tuple[Start, ...] = ()
    preemptions: tuple[Preemption, ...] = ()
    notices: tuple[Notice, ...] = ()
    pending: Mapping[int, PendingInfo] = field(default_factory=dict)
