"""What the simulator adds on top of a trace (issue #15, item 1): a synthetic booking load and
node failures.

Both are drawn from a seeded ``random.Random``, so a replay stays a pure function of its
inputs (same seed, same schedule). Times are seconds relative to the trace's first
submission, like ``TraceJob.submit_s``.

- ``booking_load``: a few users book whole nodes in day blocks, about ``fraction`` of the
  cluster's GPUs every day, as a lab does when some members reserve machines for deadlines.
  Nobody in the trace owns them, so to every trace job they are foreign bookings (ledger
  rules 2 and 3: nobody else's job may hold their GPUs while they run).
- ``failure_schedule``: each node fails after an exponentially distributed time (mean
  ``mtbf_s``) and comes back ``repair_s`` later; work running there is lost back to its
  last start.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from procplan.core.model import Topology
from procplan.core.timeutil import DAY

BOOKING_USERS = 3


class SimBooking(NamedTuple):
    """A whole-node booking of ``user`` over ``[start_s, end_s)``."""

    id: int
    node_id: str
    start_s: int
    end_s: int
    user: str


class NodeOutage(NamedTuple):
    """Node ``node_id`` is down over ``[down_s, up_s)``."""

    node_id: str
    down_s: int
    up_s: int


def booking_load(
    topology: Topology, span_s: int, fraction: float, seed: int = 1
) -> list[SimBooking]:
    """Day-long whole-node bookings over ``[0, span_s)``: each day, nodes drawn at random
    until ``fraction`` of the GPUs are booked (at least one node when ``fraction > 0``)."""
    if fraction <= 0 or span_s <= 0 or not topology.nodes:
        return []
    rng = random.Random(seed)
    target = fraction * topology.gpu_count
    out: list[SimBooking] = []
    for day in range(math.ceil(span_s / DAY)):
        nodes = list(topology.nodes)
        rng.shuffle(nodes)
        booked = 0
        for node in nodes:
            if booked >= target:
                break
            user = f"booker{len(out) % BOOKING_USERS + 1}"
            out.append(SimBooking(len(out) + 1, node.id, day * DAY, (day + 1) * DAY, user))
            booked += len(node.gpus)
    return out


def failure_schedule(
    topology: Topology, span_s: int, mtbf_s: int, repair_s: int, seed: int = 1
) -> list[NodeOutage]:
    """Outages over ``[0, span_s)``, sorted by when they begin."""
    if mtbf_s <= 0 or span_s <= 0:
        return []
    rng = random.Random(seed)
    out: list[NodeOutage] = []
    for node in topology.nodes:
        at = 0.0
        while True:
            at += rng.expovariate(1.0 / mtbf_s)
            if at >= span_s:
                break
            down = int(at)
            out.append(NodeOutage(node.id, down, down + repair_s))
            at = down + repair_s
    out.sort(key=lambda o: (o.down_s, o.node_id))
    return out
