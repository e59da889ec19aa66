"""Benchmark of the pure calendar core (no HTTP, no DB, no JSON encoding).

Scenario (the ProcPlan availability benchmark): 10 nodes / 69 GPUs, 200 bookings of 4 h per GPU
spread over one year (13,800 single-GPU bookings), a one-year window, every node. Target:
the day view of all 10 nodes <= 30 ms on the reference machine. Measured both as one bulk call
(``day_views``, what ``/api/availability_bulk`` does: the window grid is built once) and as ten
``day_view`` calls.

Run: ``python bench/availability_core.py [--repeat N]``; the last line is the summary.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from _servers import empty_loop_ms
from procplan.core.model import Booking, Gpu, Node, Priority
from procplan.core.timeutil import DAY, HOUR, parse_instant
from procplan.wire.calendar import claim_rows, day_view, day_views, hour_view

NODE_SIZES = (8, 8, 8, 8, 8, 8, 8, 8, 4, 1)  # 69 GPUs
BOOKINGS_PER_GPU = 200
BOOKING_HOURS = 4
YEAR_START = parse_instant("2025-01-01T00:00:00+00:00")
YEAR_END = YEAR_START + 365 * DAY


def build(seed: int = 7, shuffled: bool = False) -> tuple[list[Node], dict[str, list[Booking]]]:
    """Deterministic cluster and non-overlapping bookings (random whole-hour starts).

    Bookings come in store order, (start, id), unless ``shuffled``.
    """
    rng = random.Random(seed)
    nodes = [
        Node(
            id=f"node-{n:02d}",
            name=f"Node {n:02d}",
            gpus=tuple(Gpu(id=f"node-{n:02d}-gpu{i}", kind="A100", index=i) for i in range(size)),
        )
        for n, size in enumerate(NODE_SIZES)
    ]
    per_node: dict[str, list[Booking]] = {}
    next_id = 1
    slot_hours = BOOKING_HOURS + 1  # a 4 h booking at offset 0 or 1 h of a 5 h slot
    slots = (YEAR_END - YEAR_START) // HOUR // slot_hours
    for node in nodes:
        items: list[Booking] = []
        for gpu in node.gpus:
            for block in sorted(rng.sample(range(slots), BOOKINGS_PER_GPU)):
                start = YEAR_START + (block * slot_hours + rng.choice((0, 1))) * HOUR
                items.append(
                    Booking(
                        id=next_id,
                        node_id=node.id,
                        gpu_ids=(gpu.id,),
                        start=start,
                        end=min(start + BOOKING_HOURS * HOUR, YEAR_END),
                        user=f"user{rng.randrange(20)}",
                        label=f"U{rng.randrange(20)}",
                        priority=rng.choice(list(Priority)),
                    )
                )
                next_id += 1
        if shuffled:
            rng.shuffle(items)
        else:
            items.sort(key=lambda b: (b.start, b.id))
        per_node[node.id] = items
    return nodes, per_node


def measure(cases: dict[str, Callable[[], object]], repeat: int) -> dict[str, tuple[float, float]]:
    """(best, median) CPU time of this process in milliseconds, per case.

    CPU time rather than wall time, and cases interleaved round by round: the reference
    machine is shared, and wall time or back-to-back runs mostly measured the neighbours.
    Each result is dropped before the clock stops, as a server would after sending it.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            began = time.process_time()
            fn()
            times[name].append((time.process_time() - began) * 1000)
    return {name: (min(ts), statistics.median(ts)) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--shuffled", action="store_true", help="bookings in random order")
    args = parser.parse_args()
    nodes, per_node = build(shuffled=args.shuffled)
    every = [b for items in per_node.values() for b in items]
    print(f"{len(nodes)} nodes, {sum(len(n.gpus) for n in nodes)} GPUs, {len(every)} bookings")

    def days() -> None:
        day_views(nodes, YEAR_START, YEAR_END, every)

    def days_one_by_one() -> None:
        for node in nodes:
            day_view(node, YEAR_START, YEAR_END, per_node[node.id])

    def week_hours() -> None:
        for node in nodes:
            hour_view(node, YEAR_START, YEAR_START + 7 * DAY, per_node[node.id])

    def rows() -> None:
        claim_rows(nodes, YEAR_START, YEAR_END, every)

    began = time.process_time()
    days()
    cold = (time.process_time() - began) * 1000
    results = measure(
        {"days": days, "single": days_one_by_one, "hours": week_hours, "rows": rows}, args.repeat
    )
    loop_ms = empty_loop_ms()
    (day_best, day_med), (single_best, single_med) = results["days"], results["single"]
    (hour_best, hour_med), (rows_best, rows_med) = results["hours"], results["rows"]
    print(f"calibration: 1M empty loop {loop_ms:.1f} ms (reference machine: ~21 ms)")
    print(f"day_views year, 10 nodes: first {cold:.1f} ms (cold ISO memo)")
    print(f"day_views year, 10 nodes: best {day_best:.1f} ms, median {day_med:.1f} ms")
    print(f"day_view  year, 10 calls: best {single_best:.1f} ms, median {single_med:.1f} ms")
    print(f"hour_view week, 10 nodes: best {hour_best:.1f} ms, median {hour_med:.1f} ms")
    print(f"claim_rows year, all:     best {rows_best:.1f} ms, median {rows_med:.1f} ms")
    print(
        f"SUMMARY day_view_10_nodes_ms={day_med:.1f} day_view_10_nodes_best_ms={day_best:.1f} "
        f"day_view_10_nodes_cold_ms={cold:.1f} day_view_10_calls_ms={single_med:.1f} "
        f"hour_view_week_10_nodes_ms={hour_med:.1f} "
        f"claim_rows_year_ms={rows_med:.1f} empty_loop_1m_ms={loop_ms:.1f}"
    )


if __name__ == "__main__":
    main()
