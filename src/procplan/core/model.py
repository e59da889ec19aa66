"""The vocabulary of DESIGN.md as immutable values: nodes, GPUs, bookings, claims.

Everything here is plain data; behaviour lives in the modules that use it (ledger, calendar,
topology). Times are ``Instant`` (int seconds, UTC, half-open intervals).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import NamedTuple

from procplan.core.timeutil import Instant

UNSPECIFIED_KIND = "unspecified"


class Priority(IntEnum):
    """Booking priority; the integer order is the importance order."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        """The lower-case wire name: ``low``, ``medium`` or ``high``."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: object) -> Priority:
        """Case-insensitive parse of a wire name; ``ValueError`` with the compat message."""
        if isinstance(value, str):
            member = cls.__members__.get(value.strip().upper())
            if member is not None:
                return member
        raise ValueError("Priority must be one of low, medium, high")


class BookingStatus(StrEnum):
    """Only ``active`` bookings hold the future; the others are history."""

    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Gpu:
    """One device; ``id`` is unique in the whole cluster, ``index`` is its PCI-bus order."""

    id: str
    kind: str = UNSPECIFIED_KIND
    index: int = 0
    uuid: str | None = None
    memory_mb: int | None = None


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """A GPU as a reader discovers it on a host (NVML, nvidia-smi, or the fake reader)."""

    index: int  # PCI bus order on its host: what CUDA_VISIBLE_DEVICES counts in
    uuid: str
    name: str
    memory_mb: int | None = None

    def as_gpu(self, node_id: str) -> Gpu:
        """The cluster GPU for this device on ``node_id`` (ids are ``<node>-gpu<index>``)."""
        return Gpu(
            id=f"{node_id}-gpu{self.index}",
            kind=self.name,
            index=self.index,
            uuid=self.uuid,
            memory_mb=self.memory_mb,
        )


@dataclass(frozen=True, slots=True)
class Node:
    """A machine with GPUs, in config order."""

    id: str
    name: str
    gpus: tuple[Gpu, ...] = ()

    @property
    def gpu_ids(self) -> tuple[str, ...]:
        return tuple(gpu.id for gpu in self.gpus)


@dataclass(frozen=True, slots=True)
class Topology:
    """The cluster: nodes in config order. Lookups are precomputed once."""

    nodes: tuple[Node, ...]
    _by_id: dict[str, Node] = field(init=False, repr=False, compare=False)
    _gpu_node: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {node.id: node for node in self.nodes})
        gpu_node = {gpu.id: node.id for node in self.nodes for gpu in node.gpus}
        object.__setattr__(self, "_gpu_node", gpu_node)

    def node(self, node_id: str) -> Node | None:
        return self._by_id.get(node_id)

    def node_of_gpu(self, gpu_id: str) -> str | None:
        return self._gpu_node.get(gpu_id)

    @property
    def gpu_count(self) -> int:
        return len(self._gpu_node)


class Booking(NamedTuple):
    """A reservation of specific GPUs of one node over ``[start, end)``.

    ``user`` owns it (rule 2 of the ledger); ``label`` is what calendars show (ProcPlan's
    ``user_label``, usually initials). A NamedTuple, not a dataclass: views build tens of
    thousands of these per request and tuple construction is several times cheaper.
    """

    id: int
    node_id: str
    gpu_ids: tuple[str, ...]
    start: Instant
    end: Instant
    user: str
    label: str
    priority: Priority = Priority.MEDIUM
    status: BookingStatus = BookingStatus.ACTIVE
    created_at: Instant = 0

    @property
    def is_active(self) -> bool:
        return self.status is BookingStatus.ACTIVE


@dataclass(frozen=True, slots=True)
class Claim:
    """One ledger entry: a GPU held over ``[start, end)`` by a booking."""

    gpu_id: str
    start: Instant
    end: Instant
    booking_id: int


@dataclass(frozen=True, slots=True)
class BookingRequest:
    """What a client asks for; validated by ``core.bookings.validate_request``.

    Exactly one of ``gpu_ids`` / ``gpu_count`` selects GPUs.
    """

    node_id: str
    start: Instant
    end: Instant
    user: str
    label: str
    priority: Priority = Priority.MEDIUM
    gpu_ids: tuple[str, ...] | None = None
    gpu_count: int | None = None
