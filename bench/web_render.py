"""Issue #5 benchmark: how fast the planner page renders a big cluster in real Chromium.

A real ``procplan server`` with a 40-node × 8-GPU config (320 GPU rows) and bookings on every
GPU in the shown weeks (about ``--per-gpu`` each per week, random lengths and priorities),
then Debian's Chromium (``/usr/bin/chromium``, driven by Playwright, headless) opens the
planner:

- ``load``: navigation start → every GPU row of the week view is in the DOM (page, scripts,
  nodes and calendar requests, and the render);
- ``switch``: "Next ›" clicked → the next week's grid is shown (one calendar request and the
  render), repeated over several weeks.

Target (issue #5): the week view renders in under 300 ms. (The year/day view of the issue
does not exist yet; this script measures the page as it is.)

Usage: ``python bench/web_render.py [--nodes 40] [--gpus 8] [--per-gpu 6] [--weeks 4]``
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


def bookings_for(nodes: int, gpus: int, per_gpu: int, weeks: int, start: datetime) -> list[dict]:
    """Non-overlapping bookings per GPU: ``per_gpu`` a week, 2–20 h long, random gaps."""
    rng = random.Random(1337)
    found = []
    span_h = weeks * 7 * 24
    for n in range(nodes):
        for g in range(gpus):
            hour = rng.randrange(0, 12)
            while hour < span_h:
                length = rng.randrange(2, 21)
                begin = start + timedelta(hours=hour)
                found.append(
                    {
                        "node_id": f"n{n:03d}",
                        "gpu_ids": [f"n{n:03d}-g{g}"],
                        "start": begin.isoformat(),
                        "end": (begin + timedelta(hours=length)).isoformat(),
                        "priority": rng.choice(PRIORITIES),
                        "label": f"U{rng.randrange(100):02d}",
                        "user": f"user{rng.randrange(20)}",
                    }
                )
                hour += length + rng.randrange(1, max(2, 168 // per_gpu * 2 - length))
    return found


def fill(url: str, bookings: list[dict]) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:

        def post(body: dict) -> None:
            reply = http.post("/api/v1/bookings", json=body)
            if reply.status_code != 201:
                raise RuntimeError(reply.text)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(post, bookings))


def measure(url: str, rows: int, weeks: int, rounds: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    loads: list[float] = []
    switches: list[float] = []
    ready = f"document.querySelectorAll('#grid tbody tr').length >= {rows}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for _ in range(rounds):
            page.goto(url + "/", wait_until="commit")
            page.wait_for_function(ready, timeout=60_000)
            loads.append(page.evaluate("performance.now()") / 1000)
            for _ in range(weeks - 1):
                label = page.inner_text("#week-label")
                began = page.evaluate("performance.now()")
                page.click("#week-next")
                page.wait_for_function(
                    f"document.getElementById('week-label').textContent !== {label!r} && {ready}",
                    timeout=60_000,
                )
                switches.append((page.evaluate("performance.now()") - began) / 1000)
        browser.close()
    return loads, switches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=40)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--per-gpu", type=int, default=6, help="bookings per GPU per week")
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="procplan-web-"))
    config = write_topology(workdir / "cluster.json", args.nodes, args.gpus)
    server = ServerProcess(
        ["--config", str(config), "--database", str(workdir / "web.db")],
        env={"PROCPLAN_LOCAL_AGENT": "off", "PROCPLAN_MAX_PAST_MINUTES": str(14 * 24 * 60)},
    )
    start = monday(datetime.now(UTC))
    bookings = bookings_for(args.nodes, args.gpus, args.per_gpu, args.weeks, start)
    with server:
        began = time.monotonic()
        fill(server.url, bookings)
        filled_s = time.monotonic() - began
        loads, switches = measure(server.url, args.nodes * args.gpus, args.weeks, args.rounds)
    print(f"machine: {machine()}; empty loop {empty_loop_ms():.1f} ms")
    print(f"{len(bookings)} bookings written in {filled_s:.1f} s")
    print(
        f"SUMMARY nodes={args.nodes} gpus={args.nodes * args.gpus} bookings={len(bookings)} "
        f"week_load_p50_ms={percentile(loads, 0.5) * 1000:.0f} "
        f"week_switch_p50_ms={percentile(switches, 0.5) * 1000:.0f} "
        f"week_switch_p90_ms={percentile(switches, 0.9) * 1000:.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
