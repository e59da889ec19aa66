"""What the read-only views answer, as values: the bookings of a calendar window, and the
cluster and host counters of the Go scheduler's and local-gpu-scheduler's status routes.

Services build these (``service.bookings``, ``service.jobs``); ``wire.calendar``,
``wire.cluster`` and ``wire.srun`` render them. The cluster view of nodes is
``core.node_view``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from procplan.core.model import Booking, Node
from procplan.core.timeutil import Instant

__all__ = ["Availability", "ClusterCounts", "Granularity", "LedgerWindow", "LocalStatus"]

Granularity = Literal["hour", "day"]


@dataclass(frozen=True, slots=True)
class LedgerWindow:
    """The ledger over ``[start, end)`` for ``nodes`` (each once, in the order asked for):
    their bookings overlapping the window, in any status (views pick what they show)."""

    start: Instant
    end: Instant
    nodes: tuple[Node, ...]
    bookings: tuple[Booking, ...]


@dataclass(frozen=True, slots=True)
class Availability:
    """ProcPlan's availability grids: ``window`` at hour or day granularity, one grid per
    node."""

    window: LedgerWindow
    granularity: Granularity


@dataclass(frozen=True, slots=True)
class ClusterCounts:
    """The Go scheduler's cluster totals. ``online_nodes`` counts every node of the topology:
    nodes whose agent stopped reporting are the node service's to know (the route takes
    them out)."""

    total_gpus: int
    available_gpus: int  # neither held by a running job nor booked now
    total_nodes: int
    online_nodes: int
    total_jobs: int  # all of history
    pending_jobs: int
    running_jobs: int


@dataclass(frozen=True, slots=True)
class LocalStatus:
    """local-gpu-scheduler's counters for this host's node ``node_id``."""

    node_id: str
    gpus_total: int
    gpus_allocated: tuple[int, ...]  # PCI indices held by running jobs, ascending
    jobs_running: int
    jobs_queued: int
    jobs_total: int  # all of history
