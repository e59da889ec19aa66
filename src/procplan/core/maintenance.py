"""Node maintenance as values (issue #16 item 5, ADR 0020): drains and Slurm-like node states.

An admin drains a node before working on it: nothing new starts there (the planner treats it
as ``NodeState.draining``; the booking writer refuses new bookings with ``node_draining``),
while what runs finishes and existing bookings stay. ``sched_state`` condenses a node into one
word the way ``sinfo`` does, so the CLI, the board and scripts read the same answer instead
of each deriving it from liveness, holders and drains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from procplan.core.model import Booking
from procplan.core.timeutil import Instant

__all__ = ["DOWN_REASON", "Drain", "NodeRecord", "SchedState", "sched_state"]

SchedState = Literal["idle", "mixed", "allocated", "draining", "drained", "down"]

# sinfo's word for a node whose daemon stopped answering.
DOWN_REASON = "not responding"


@dataclass(frozen=True, slots=True)
class Drain:
    """Why, since when and by whom a node is drained (``reason`` may be ``None``)."""

    reason: str | None
    since: Instant
    by: str | None


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node's maintenance state after an admin's change: its drain, when an admin removed
    it, and the bookings whose owners a drain told (empty for other changes)."""

    node_id: str
    drain: Drain | None
    removed_at: Instant | None
    notified: tuple[Booking, ...] = ()


def sched_state(
    *,
    liveness: str,
    drain: Drain | None,
    busy: bool,
    gpus_in_use: int,
    gpus: int,
) -> SchedState:
    """One word for the node, like ``sinfo``'s STATE.

    A drain is the admin's decision, so it wins over liveness (``state`` still says whether
    the agent reports): ``draining`` while work (a running job or a booking in force) is
    still there, ``drained`` once it is empty. Otherwise an offline agent is ``down``; a node
    no agent ever reported for is judged by its holders alone (bookings and interactive jobs
    use it without an agent). ``busy`` is whether a job runs or a booking is in force there;
    a node without GPUs is ``allocated`` while busy.
    """
    if drain is not None:
        return "draining" if busy or gpus_in_use else "drained"
    if liveness == "offline":
        return "down"
    if gpus_in_use == 0:
        return "allocated" if busy and gpus == 0 else "idle"
    return "allocated" if gpus_in_use >= gpus else "mixed"
