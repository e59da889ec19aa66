"""Issue #5 benchmark: how fast the planner page renders a big cluster in real Chromium.

A real ``procplan server`` with a 40-node × 8-GPU config (320 GPU rows). Bookings: about
``--per-gpu`` per GPU per week (2–20 h) in the measured weeks from this Monday, and about
``--year-per-gpu`` per GPU per week (4 h – 3 days) over the rest of the current UTC year. Then
Debian's Chromium (``/usr/bin/chromium``, driven by Playwright, headless, 1280×900) opens the
planner. Every figure runs to the page's own ``procplan:grid-painted`` mark, set in the task
after the frame that lays out and paints the new grid (so it includes the requests, building
the DOM, style, layout and paint):

- ``week load``: navigation start → the week view is painted;
- ``week switch``: "Next ›" clicked → the next week is painted (repeated over the weeks);
- ``year load``: navigation start to ``/#view=year`` → the whole year (365 day columns × 320
  GPUs, every booking of the year) is painted;
- ``year switch``: "Year · days" clicked from the week view → the year is painted.

Targets (issue #5): the week/hour view in under 300 ms, a year × 40 nodes × 8 GPUs under 1 s.

Usage: ``python bench/web_render.py [--nodes 40] [--gpus 8] [--per-gpu 6] [--year-per-gpu 0.5]
[--weeks 4] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from _servers import empty_loop_ms, machine, percentile, write_topology
from procplan.testing import ServerProcess

CHROMIUM = "/usr/bin/chromium"
PRIORITIES = ("low", "medium", "high")


def monday(now: datetime) -> datetime:
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def booking(node: int, gpu: int, begin: datetime, hours: int, rng: random.Random) -> dict:
    return {
        "node_id": f"n{node:03d}",
        "gpu_ids": [f"n{node:03d}-g{gpu}"],
        "start": begin.isoformat(),
        "end": (begin + timedelta(hours=hours)).isoformat(),
        "priority": rng.choice(PRIORITIES),
        "label": f"U{rng.randrange(100):02d}",
        "user": f"user{rng.randrange(20)}",
    }


def bookings_for(nodes: int, gpus: int, per_gpu: float, start: datetime, end: datetime,
                 hours: tuple[int, int], seed: int) -> list[dict]:  # fmt: skip
    """Non-overlapping bookings per GPU in [start, end): about ``per_gpu`` a week, each
    ``hours`` long (min, max), separated by random gaps."""
    rng = random.Random(seed)
    found = []
    span_h = int((end - start).total_seconds() // 3600)
    mean_gap = max(2, int(168 / per_gpu) * 2 - sum(hours) // 2)
    for n in range(nodes):
        for g in range(gpus):
            hour = rng.randrange(0, 12)
            while True:
                length = rng.randrange(hours[0], hours[1] + 1)
                if hour + length > span_h:
                    break
                found.append(booking(n, g, start + timedelta(hours=hour), length, rng))
                hour += length + rng.randrange(1, mean_gap)
    return found


def fill(url: str, bookings: list[dict]) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:

        def post(body: dict) -> None:
            reply = http.post("/api/v1/bookings", json=body)
            if reply.status_code != 201:
                raise RuntimeError(reply.text)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(post, bookings))


PAINTED = """t0 => {
    const marks = performance.getEntriesByName('procplan:grid-painted');
    const last = marks[marks.length - 1];
    return last && last.startTime > t0 ? last.startTime : null;
}"""
CLICK = "id => { const t0 = performance.now(); document.getElementById(id).click(); return t0; }"


def painted_after(page, t0: float, ready: str) -> float:
    """Seconds from ``t0`` (page clock, ms) to the first grid paint after it showing ``ready``."""
    page.wait_for_function(f"({ready}) && ({PAINTED})({t0}) !== null", timeout=60_000)
    return (page.evaluate(PAINTED, t0) - t0) / 1000


def measure(url: str, rows: int, weeks: int, rounds: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    found: dict[str, list[float]] = {"week_load": [], "week_switch": [], "year_load": [],
                                     "year_switch": []}  # fmt: skip
    grid = f"document.querySelectorAll('#grid tbody tr.gpu-row').length >= {rows}"
    week = f"{grid} && document.getElementById('grid').classList.contains('view-week')"
    year = f"{grid} && document.getElementById('grid').classList.contains('view-year')"
    today = datetime.now(UTC).date().isoformat()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for _ in range(rounds):
            page.goto(f"{url}/#view=week&date={today}", wait_until="commit")
            found["week_load"].append(painted_after(page, 0, week))
            for _ in range(weeks - 1):
                label = page.inner_text("#week-label")
                t0 = page.evaluate(CLICK, "week-next")
                shown = f"{week} && document.getElementById('week-label').textContent !== {label!r}"
                found["week_switch"].append(painted_after(page, t0, shown))
            t0 = page.evaluate(CLICK, "view-year")
            found["year_switch"].append(painted_after(page, t0, year))
            page.goto("about:blank")
            page.goto(f"{url}/#view=year&date={today}", wait_until="commit")
            found["year_load"].append(painted_after(page, 0, year))
            page.goto("about:blank")
        browser.close()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--per-gpu", type=float, default=6, help="bookings per GPU per week")
    parser.add_argument("--year-per-gpu", type=float, default=0.5,
                        help="bookings per GPU per week in the rest of the year")  # fmt: skip
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="procplan-web-"))
    config = write_topology(workdir / "cluster.json", args.nodes, args.gpus)
    server = ServerProcess(
        ["--config", str(config), "--database", str(workdir / "web.db")],
        env={"PROCPLAN_LOCAL_AGENT": "off", "PROCPLAN_MAX_PAST_MINUTES": str(400 * 24 * 60)},
    )
    start = monday(datetime.now(UTC))
    dense_end = start + timedelta(weeks=args.weeks)
    year_start = datetime(start.year, 1, 1, tzinfo=UTC)
    year_end = datetime(start.year + 1, 1, 1, tzinfo=UTC)
    shape = (args.nodes, args.gpus)
    bookings = (
        bookings_for(*shape, args.per_gpu, start, dense_end, (2, 20), seed=1337)
        + bookings_for(*shape, args.year_per_gpu, year_start, start, (4, 72), seed=7)
        + bookings_for(*shape, args.year_per_gpu, dense_end, year_end, (4, 72), seed=8)
    )
    in_year = sum(1 for b in bookings if b["start"] < year_end.isoformat())
    with server:
        began = time.monotonic()
        fill(server.url, bookings)
        filled_s = time.monotonic() - began
        found = measure(server.url, args.nodes * args.gpus, args.weeks, args.rounds)
    print(f"machine: {machine()}; empty loop {empty_loop_ms():.1f} ms")
    print(f"{len(bookings)} bookings written in {filled_s:.1f} s ({in_year} start this year)")
    for name, values in found.items():
        print(f"{name}: " + " ".join(f"{v * 1000:.0f}" for v in values) + " ms")
    figures = " ".join(
        f"{name}_p50_ms={percentile(values, 0.5) * 1000:.0f} "
        f"{name}_p90_ms={percentile(values, 0.9) * 1000:.0f}"
        for name, values in found.items()
    )
    shape_text = f"nodes={args.nodes} gpus={args.nodes * args.gpus} bookings={len(bookings)}"
    print(f"SUMMARY {shape_text} {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
