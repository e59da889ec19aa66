"""Benchmark of the pure calendar core (no HTTP, no DB, no JSON encoding).

Scenario (the ProcPlan availability benchmark): 10 nodes / 69 GPUs, 200 bookings of 4 h per GPU
spread over one year (13,800 single-GPU bookings), a one-year window, every node. Target:
``day_view`` for all 10 nodes <= 30 ms on the reference machine.

Run: ``python bench/availability_core.py [--repeat N]``; the last line is the summary.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from procplan.core.calendar import claim_rows, day_view, hour_view
from procplan.core.model import Booking, Gpu, Node, Priority
from procplan.core.timeutil import DAY, HOUR, parse_instant

NODE_SIZES = (8, 8, 8, 8, 8, 8, 8, 8, 4, 1)  # 69 GPUs
BOOKINGS_PER_GPU = 200
BOOKING_HOURS = 4
YEAR_START = parse_instant("2025-01-01T00:00:00+00:00")
YEAR_END = YEAR_START + 365 * DAY


def build(seed: int = 7) -> tuple[list[Node], dict[str, list[Booking]]]:
    """Deterministic cluster and non-overlapping bookings (random whole-hour starts)."""
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
    slots = (YEAR_END - YEAR_START) // HOUR // BOOKING_HOURS
    for node in nodes:
        items: list[Booking] = []
        for gpu in node.gpus:
            for block in sorted(rng.sample(range(slots), BOOKINGS_PER_GPU)):
                start = YEAR_START + block * BOOKING_HOURS * HOUR + rng.choice((0, 0, 1)) * HOUR
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
        rng.shuffle(items)
        per_node[node.id] = items
    return nodes, per_node


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall time in milliseconds."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    nodes, per_node = build()
    every = [b for items in per_node.values() for b in items]
    print(f"{len(nodes)} nodes, {sum(len(n.gpus) for n in nodes)} GPUs, {len(every)} bookings")

    def days() -> None:
        for node in nodes:
            day_view(node, YEAR_START, YEAR_END, per_node[node.id])

    def week_hours() -> None:
        for node in nodes:
            hour_view(node, YEAR_START, YEAR_START + 7 * DAY, per_node[node.id])

    def rows() -> None:
        claim_rows(nodes, YEAR_START, YEAR_END, every)

    day_best, day_med = measure(days, args.repeat)
    hour_best, hour_med = measure(week_hours, args.repeat)
    rows_best, rows_med = measure(rows, args.repeat)
    print(f"day_view  year, 10 nodes: best {day_best:.1f} ms, median {day_med:.1f} ms")
    print(f"hour_view week, 10 nodes: best {hour_best:.1f} ms, median {hour_med:.1f} ms")
    print(f"claim_rows year, all:     best {rows_best:.1f} ms, median {rows_med:.1f} ms")
    print(
        f"SUMMARY day_view_10_nodes_ms={day_med:.1f} day_view_10_nodes_best_ms={day_best:.1f} "
        f"hour_view_week_10_nodes_ms={hour_med:.1f} claim_rows_year_ms={rows_med:.1f}"
    )


if __name__ == "__main__":
    main()
