"""``procplan top`` (``procplan.tui.top``) driven by Textual's pilot with a fake data source.

pytest-asyncio is not a dependency: each test runs its pilot coroutine with ``asyncio.run``.
The refresh timer is set to an hour so only the mount fetch and ``r`` fetch; every fetch runs
in a worker thread, and ``settle`` waits for it.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static
from textual.widgets._footer import FooterKey

from procplan.client import ApiError, JobPage, ServerUnreachable, parse_job
from procplan.client.answers import parse_job_page
from procplan.tui.top import TopApp
from procplan.tui.top_rows import (
    GPU_COLUMNS,
    TopData,
    client_source,
    displayable,
    gpu_layout,
    gpu_rows,
)
from procplan.tui.top_widgets import ClientControls, ConfirmCancel, ProcessPanel

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def gpu(node: str, index: int, **fields: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "id": f"{node}-gpu{index}",
        "index": index,
        "uuid": f"GPU-{node}-{index}",
        "model": "NVIDIA H100 80GB HBM3",
        "memory_total_mb": 81920,
        "utilization_pct": 97.0,
        "memory_used_mb": 40960,
        "temperature_c": 61.0,
        "power_w": 402.5,
        "foreign": False,
        "flags": [],
        "holder": None,
        "processes": [],
        "mig": [],
    }
    value.update(fields)
    return value


def nodes_payload() -> dict[str, Any]:
    return {
        "generated_at": "2026-11-22T10:00:00Z",
        "summary": {
            "nodes": 2,
            "online": 1,
            "offline": 1,
            "unmanaged": 0,
            "gpus": 4,
            "gpus_in_use": 2,
            "foreign_gpus": 1,
            "flagged_gpus": 1,
        },
        "nodes": [
            {
                "id": "gpu-01",
                "name": "gpu-01",
                "state": "online",
                "last_seen_age_s": 1.0,
                "gpus": [
                    gpu(
                        "gpu-01",
                        0,
                        holder={"kind": "job", "job_id": 17, "user": "alice", "name": "train"},
                    ),
                    gpu("gpu-01", 1, foreign=True, flags=["unbooked_use"], utilization_pct=55.0),
                    gpu("gpu-01", 2, utilization_pct=None, memory_used_mb=None),
                ],
            },
            {
                "id": "gpu-02",
                "name": "gpu-02",
                "state": "offline",
                "last_seen_age_s": 180.0,
                "gpus": [gpu("gpu-02", 0, model="NVIDIA A100-SXM4-40GB")],
            },
        ],
    }


PENDING = [
    {"id": "21", "user": "carol", "name": "big", "state": "pending", "gpu_count": 4,
     "queue_position": 1, "reason": "Resources", "estimated_start": "2026-11-22T10:12:00+00:00"},
    {"id": "22", "user": "dave", "name": "small", "state": "pending", "gpu_count": 1,
     "queue_position": 2, "reason": "Priority", "estimated_start": None},
]  # fmt: skip
RUNNING = [
    {"id": "17", "user": "alice", "name": "train", "state": "running", "gpu_count": 1,
     "node_ids": ["gpu-01"], "gpu_indices": [0], "started_at": "2026-11-22T08:55:00+00:00",
     "time_limit_s": 7200},
]  # fmt: skip
BOOKINGS = [
    {"id": 3, "node_id": "gpu-01", "gpu_ids": ["gpu-01-gpu2"], "user": "bob", "label": "exp",
     "start": "2026-11-22T09:00:00+00:00", "end": "2026-11-22T18:00:00+00:00",
     "status": "active"},
]  # fmt: skip


def make_data(**changes: Any) -> TopData:
    fields: dict[str, Any] = {
        "nodes": nodes_payload(),
        "pending": copy.deepcopy(PENDING),
        "running": copy.deepcopy(RUNNING),
        "bookings": copy.deepcopy(BOOKINGS),
        "at": NOW,
    }
    fields.update(changes)
    for jobs in ("pending", "running"):  # the client hands jobs over parsed
        fields[jobs] = [parse_job(job) for job in fields[jobs]]
    return TopData(**fields)


class FakeSource:
    """Returns ``data`` (or raises ``error``) and counts the calls."""

    def __init__(self, data: TopData) -> None:
        self.data = data
        self.error: Exception | None = None
        self.calls = 0

    def __call__(self) -> TopData:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.data


Scenario = Callable[[TopApp, Pilot[None]], Awaitable[None]]


def drive(source: Any, scenario: Scenario) -> TopApp:
    async def main() -> TopApp:
        app = TopApp(source, refresh_s=3600)
        async with app.run_test(size=(180, 50)) as pilot:
            await settle(app, pilot)
            await scenario(app, pilot)
        return app

    return asyncio.run(main())


async def settle(app: TopApp, pilot: Pilot[None]) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


async def press(app: TopApp, pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await settle(app, pilot)


def table(app: TopApp, name: str) -> DataTable[Any]:
    return app.query_one(f"#{name}", DataTable)


def keys(app: TopApp, name: str) -> list[str | None]:
    return [row.key.value for row in table(app, name).ordered_rows]


def cell(app: TopApp, name: str, row: str, column: str) -> str:
    value = table(app, name).get_cell(row, column)
    return value.plain if isinstance(value, Text) else str(value)


def static_text(app: TopApp, name: str) -> str:
    content = app.query_one(f"#{name}", Static).content
    return content.plain if isinstance(content, Text) else str(content)


# -- rendering --------------------------------------------------------------------------------


def test_rows_rendered_from_the_source():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        assert keys(app, "gpus") == ["gpu-01-gpu0", "gpu-01-gpu1", "gpu-01-gpu2", "gpu-02-gpu0"]
        assert cell(app, "gpus", "gpu-01-gpu0", "model") == "NVIDIA H100 80GB HBM3"
        assert cell(app, "gpus", "gpu-01-gpu0", "holder") == 'job 17 alice "train"'
        assert cell(app, "gpus", "gpu-01-gpu0", "util").endswith(" 97%")
        assert cell(app, "gpus", "gpu-01-gpu0", "memory").endswith(" 40.0/80G")
        assert cell(app, "gpus", "gpu-01-gpu0", "temp") == "61°C"
        assert "in use without booking" in cell(app, "gpus", "gpu-01-gpu1", "flags")
        assert cell(app, "gpus", "gpu-01-gpu2", "util").endswith(" –")
        assert cell(app, "gpus", "gpu-02-gpu0", "node") == "gpu-02 (offline 3m)"
        assert keys(app, "queue") == ["21", "22"]
        assert cell(app, "queue", "21", "reason") == "Resources"
        assert cell(app, "queue", "21", "est. start") == "in 12 min"
        assert cell(app, "running", "17", "node:gpus") == "gpu-01:0"
        assert cell(app, "running", "17", "elapsed") == "1h05m"
        assert cell(app, "running", "17", "limit") == "2h00m"
        assert cell(app, "bookings", "3", "time") == "09:00–18:00"
        summary = static_text(app, "summary")
        assert "2 nodes (1 online, 1 offline)" in summary
        assert "2/4 GPUs in use" in summary and "2 pending · 1 running" in summary
        assert static_text(app, "status").startswith("updated 10:00:00 UTC")

    drive(FakeSource(make_data()), check)


def test_refresh_updates_cells_in_place_and_keeps_the_cursor():
    source = FakeSource(make_data())

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        gpus = table(app, "gpus")
        gpus.move_cursor(row=2)
        rebuilt: list[bool] = []
        original_clear = gpus.clear
        gpus.clear = lambda columns=False: rebuilt.append(True) or original_clear(columns)  # type: ignore[method-assign]
        payload = nodes_payload()
        payload["nodes"][0]["gpus"][2]["utilization_pct"] = 12.0
        payload["nodes"][0]["gpus"][0]["holder"] = None
        source.data = make_data(nodes=payload)
        calls = source.calls
        await press(app, pilot, "r")
        assert source.calls == calls + 1
        assert keys(app, "gpus") == ["gpu-01-gpu0", "gpu-01-gpu1", "gpu-01-gpu2", "gpu-02-gpu0"]
        assert cell(app, "gpus", "gpu-01-gpu2", "util").endswith(" 12%")
        assert cell(app, "gpus", "gpu-01-gpu0", "holder") == ""
        assert gpus.cursor_row == 2
        assert rebuilt == []

    drive(source, check)


def test_vanished_and_new_rows_keep_the_cursor_on_its_row():
    source = FakeSource(make_data())

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        queue = table(app, "queue")
        queue.move_cursor(row=1)
        new = {**PENDING[1], "id": "23", "queue_position": 3}
        source.data = make_data(pending=[PENDING[1], new])
        await press(app, pilot, "r")
        assert keys(app, "queue") == ["22", "23"]
        assert queue.cursor_row == 0  # still on job 22

    drive(source, check)


def test_f_toggles_flagged_gpus_only():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        await press(app, pilot, "f")
        assert keys(app, "gpus") == ["gpu-01-gpu1"]
        assert "flagged GPUs only" in static_text(app, "summary")
        await press(app, pilot, "f")
        assert keys(app, "gpus") == ["gpu-01-gpu0", "gpu-01-gpu1", "gpu-01-gpu2", "gpu-02-gpu0"]

    drive(FakeSource(make_data()), check)


def test_keys_move_focus_between_tables():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        await press(app, pilot, "2")
        assert app.focused is not None and app.focused.id == "queue"
        await press(app, pilot, "tab")
        assert app.focused.id == "running"
        await press(app, pilot, "shift+tab", "shift+tab")
        assert app.focused.id == "gpus"
        await press(app, pilot, "4")
        assert app.focused.id == "bookings"
        await press(app, pilot, "1", "down", "down")
        assert table(app, "gpus").cursor_row == 2

    drive(FakeSource(make_data()), check)


def test_q_quits():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running

    drive(FakeSource(make_data()), check)


def test_unreachable_server_shows_a_status_line_and_keeps_the_data():
    source = FakeSource(make_data())

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        source.error = ServerUnreachable("http://gpu-head:8080", "connection refused")
        await press(app, pilot, "r")
        status = static_text(app, "status")
        assert status.startswith("cannot reach server at http://gpu-head:8080: connection refused")
        assert "retrying" in status and "showing data from 10:00:00 UTC" in status
        assert len(keys(app, "gpus")) == 4
        source.error = None
        await press(app, pilot, "r")
        assert static_text(app, "status").startswith("updated")

    drive(source, check)


def test_unreachable_at_start_and_server_refusal():
    source = FakeSource(make_data())
    source.error = ServerUnreachable("http://x:1", "timed out")

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        assert static_text(app, "status").startswith("cannot reach server at http://x:1")
        assert keys(app, "gpus") == []
        source.error = ApiError(500, "boom")
        await press(app, pilot, "r")
        assert static_text(app, "status").startswith("server error: boom")

    drive(source, check)


# -- pure parts -------------------------------------------------------------------------------


def test_gpu_less_node_gets_one_row():
    payload = {"nodes": [{"id": "cpu-1", "state": "unmanaged", "gpus": []}]}
    rows = gpu_rows(TopData(payload, at=NOW))
    assert [key for key, _ in rows] == ["node:cpu-1"]
    assert gpu_rows(TopData(payload, at=NOW), flagged_only=True) == []


class RecordingClient:
    """Stands in for ``ProcPlanClient``: its parts (``nodes``, ``jobs``, ``bookings``) record
    the calls ``client_source`` makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.nodes = SimpleNamespace(list=self.list_nodes)
        self.jobs = SimpleNamespace(list=self.list_jobs)
        self.bookings = SimpleNamespace(list=self.list_bookings)

    def list_nodes(self) -> dict[str, Any]:
        self.calls.append(("nodes", {}))
        return nodes_payload()

    def list_jobs(self, **filters: Any) -> JobPage:
        self.calls.append(("jobs", filters))
        return parse_job_page({"jobs": PENDING if filters["state"] == "pending" else RUNNING})

    def list_bookings(self, **filters: Any) -> dict[str, Any]:
        self.calls.append(("bookings", filters))
        late = {**BOOKINGS[0], "id": 4, "start": "2026-11-22T20:00:00+00:00"}
        gone = {**BOOKINGS[0], "id": 5, "status": "cancelled"}
        return {"bookings": [late, gone, BOOKINGS[0]]}


def test_client_source_asks_for_todays_bookings():
    client = RecordingClient()
    data = client_source(client, lambda: NOW)()  # type: ignore[arg-type]
    assert [name for name, _ in client.calls] == ["nodes", "jobs", "jobs", "bookings"]
    assert client.calls[1][1]["state"] == "pending" and client.calls[2][1]["state"] == "running"
    window = client.calls[3][1]
    assert window["start"] == datetime(2026, 11, 22, tzinfo=UTC)
    assert window["end"] == datetime(2026, 11, 23, tzinfo=UTC)
    assert [b["id"] for b in data.bookings] == [3, 4]
    assert (len(data.pending), len(data.running), data.at) == (2, 1, NOW)


# -- output hygiene: hostile server text ------------------------------------------------------

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J\x1b[H"
C0C1 = "\x01\x08\x7f\x9b6n"
BIDI = "\u202etxt.exe\u2066"
MARKUP = "[bold red]x[/]"


def hostile_data() -> TopData:
    payload = nodes_payload()
    first = payload["nodes"][0]
    first["gpus"][0]["holder"] = {"kind": "job", "job_id": 17, "user": TITLE, "name": MARKUP}
    first["gpus"][1]["flags"] = [C0C1]
    first["gpus"][2]["model"] = CLEAR + "H100"
    payload["nodes"][1]["id"] = BIDI
    pending = [{**PENDING[0], "user": TITLE, "name": MARKUP, "reason": C0C1}]
    running = [{**RUNNING[0], "user": "a" * 30_000, "name": BIDI}]
    bookings = [{**BOOKINGS[0], "user": CLEAR, "label": "[link=http://evil]y[/link]"}]
    return make_data(nodes=payload, pending=pending, running=running, bookings=bookings)


def _control_free(text: str) -> bool:
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u2066" for c in text)


def test_hostile_server_text_is_shown_escaped_never_as_markup():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        for name in ("gpus", "queue", "running", "bookings"):
            for row in table(app, name).ordered_rows:
                for value in table(app, name).get_row(row.key):
                    assert isinstance(value, Text), (name, value)  # never parsed as markup
                    assert _control_free(value.plain) and len(value.plain) <= 64, value
        assert (
            cell(app, "gpus", "gpu-01-gpu0", "holder")
            == 'job 17 \\x1b]0;pwned\\x07 "[bold red]x[/]"'
        )
        assert cell(app, "gpus", "gpu-01-gpu1", "flags").endswith("⚠ \\x01\\x08\\x7f\\x9b6n")
        assert cell(app, "gpus", "gpu-01-gpu2", "model") == "\\x1b[2J\\x1b[HH100"
        assert cell(app, "gpus", "gpu-02-gpu0", "node").startswith("\\u202etxt.exe\\u2066")
        assert cell(app, "queue", "21", "user") == "\\x1b]0;pwned\\x07"
        assert cell(app, "queue", "21", "name") == MARKUP
        assert cell(app, "queue", "21", "reason") == "\\x01\\x08\\x7f\\x9b6n"
        assert cell(app, "running", "17", "user") == "a" * 63 + "…"
        assert cell(app, "bookings", "3", "label") == "[link=http://evil]y[/link]"
        assert cell(app, "bookings", "3", "user") == "\\x1b[2J\\x1b[H"

    drive(FakeSource(hostile_data()), check)


def test_typed_jobs_are_cleaned_field_by_field():
    """``displayable`` cleans every text of a typed job, tuples too; numbers and instants stay."""
    hostile = {**RUNNING[0], "user": TITLE, "node_ids": [BIDI, "gpu-01"]}
    (job,) = displayable(make_data(running=[hostile])).running
    assert (job.user, job.node_ids) == ("\\x1b]0;pwned\\x07", ("\\u202etxt.exe\\u2066", "gpu-01"))
    assert (job.gpu_indices, job.started_at) == ((0,), datetime(2026, 11, 22, 8, 55, tzinfo=UTC))


def test_hostile_error_message_is_one_escaped_line():
    source = FakeSource(make_data())
    source.error = ApiError(500, f"boom{TITLE}\n{MARKUP}")

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        status = static_text(app, "status")
        assert status.startswith("server error: boom\\x1b]0;pwned\\x07\\n[bold red]x[/]")
        assert _control_free(status)

    drive(source, check)


# -- issue #17 item 6: 80×24, sort, filter, cancel, processes ---------------------------------


def many_gpus(nodes: int = 5, per_node: int = 4) -> TopData:
    """``nodes`` × ``per_node`` GPUs; gpu-01-gpu0 is held by alice's job 17, gpu-01-gpu1 is
    flagged, utilisation and memory vary so that every sort gives another order."""
    payload = nodes_payload()
    payload["nodes"] = []
    for n in range(1, nodes + 1):
        name = f"gpu-{n:02d}"
        gpus = [
            gpu(
                name,
                i,
                utilization_pct=float((n * 7 + i * 13) % 100),
                memory_used_mb=1024 * ((n * 5 + i * 11) % 80),
            )
            for i in range(per_node)
        ]
        payload["nodes"].append({"id": name, "name": name, "state": "online", "gpus": gpus})
    first = payload["nodes"][0]["gpus"]
    first[0]["holder"] = {"kind": "job", "job_id": 17, "user": "alice", "name": "train"}
    first[0]["processes"] = [
        {"pid": 4242, "user": "alice", "command": "python train.py", "used_memory_mb": 39000,
         "kind": "job", "job_id": 17},
        {"pid": 999, "user": "mallory", "command": "miner", "used_memory_mb": 1000,
         "kind": "stray", "job_id": None},
    ]  # fmt: skip
    first[1].update(foreign=True, flags=["unbooked_use"])
    first[2]["holder"] = {"kind": "job", "job_id": 30, "user": "bob", "name": "eval"}
    return make_data(nodes=payload)


class FakeControls:
    """``whoami`` answers ``me``; ``cancel`` records the job ids (or raises ``error``)."""

    def __init__(self, me: str | None) -> None:
        self.me = me
        self.cancelled: list[str] = []
        self.error: Exception | None = None

    def whoami(self) -> str | None:
        return self.me

    def cancel(self, job_id: str) -> None:
        if self.error is not None:
            raise self.error
        self.cancelled.append(job_id)


def drive_at(
    size: tuple[int, int], source: Any, scenario: Scenario, controls: Any = None
) -> TopApp:
    async def main() -> TopApp:
        app = TopApp(source, refresh_s=3600, controls=controls)
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            await scenario(app, pilot)
        return app

    return asyncio.run(main())


def screen_lines(table: DataTable[Any]) -> list[str]:
    """What the table shows, line by line (header first)."""
    return [table.render_line(y).text for y in range(table.size.height)]


def screen_text(app: TopApp) -> list[str]:
    """The terminal as the user sees it, line by line."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def fits(app: TopApp, name: str) -> bool:
    grid = table(app, name)
    used = sum(column.get_render_width(grid) for column in grid.ordered_columns)
    return used <= grid.scrollable_content_region.width and grid.region.right <= app.size.width


def test_80x24_shows_holder_and_flags_and_every_gpu():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        gpus = table(app, "gpus")
        assert [c.key.value for c in gpus.ordered_columns] == [
            "node", "idx", "util", "memory", "holder", "flags",
        ]  # fmt: skip
        assert fits(app, "gpus")
        lines = screen_lines(gpus)
        assert "holder" in lines[0] and "flags" in lines[0]
        assert 'job 17 alice "train"' in lines[1]
        assert "⚠ unbooked" in lines[2]
        shown = [line for line in lines[1:] if line.strip()]
        assert len(shown) == 20  # all 20 GPUs on one screen
        assert shown[-1].startswith(" gpu-05") and " 3 " in shown[-1]
        footer = {key.key: key for key in app.query(FooterKey)}
        for key in ("q", "s", "slash", "c", "enter", "f", "r"):
            assert key in footer, key
            assert footer[key].region.right <= 80 and footer[key].region.height > 0, key
        screen = screen_text(app)
        assert screen[0].rstrip().endswith("2 pending · 1 running")  # the summary fits
        for entry in ("⏎ Processes", "q Quit", "s Sort", "/ Filter", "c Cancel", "r Refresh"):
            assert entry in screen[-1], entry

    drive_at((80, 24), FakeSource(many_gpus()), check)


def test_80x24_more_gpus_are_reached_by_scrolling():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        gpus = table(app, "gpus")
        assert gpus.size.height - 1 >= 20  # rows visible at once
        assert not any("gpu-08" in line for line in screen_lines(gpus))
        await press(app, pilot, "pagedown", "ctrl+end")
        assert gpus.cursor_row == 31
        assert keys(app, "gpus")[31] == "gpu-08-gpu3"
        assert any(line.startswith(" gpu-08") and " 3 " in line for line in screen_lines(gpus))

    drive_at((80, 24), FakeSource(many_gpus(8)), check)


def test_120x40_shows_every_table_and_more_gpu_columns():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        for name in ("gpus", "queue", "running", "bookings"):
            assert table(app, name).display and table(app, name).size.height > 2, name
        columns = [c.key.value for c in table(app, "gpus").ordered_columns]
        assert {"holder", "flags", "temp", "power"} <= set(columns)
        assert fits(app, "gpus")
        header = screen_lines(table(app, "gpus"))[0]
        assert "holder" in header and "flags" in header

    drive_at((120, 40), FakeSource(many_gpus()), check)


def test_compact_keys_switch_the_single_table():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        assert not table(app, "queue").display
        await press(app, pilot, "3")
        assert table(app, "running").display and not table(app, "gpus").display
        assert "Running (1 for GPUs)" in static_text(app, "summary")
        await press(app, pilot, "1")
        assert table(app, "gpus").display and not table(app, "running").display

    drive_at((80, 24), FakeSource(many_gpus()), check)


def test_s_cycles_the_sort_column():
    data = make_data()

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        server = ["gpu-01-gpu0", "gpu-01-gpu1", "gpu-01-gpu2", "gpu-02-gpu0"]
        assert keys(app, "gpus") == server
        await press(app, pilot, "s")  # util, busiest first, no reading last
        assert keys(app, "gpus") == ["gpu-01-gpu0", "gpu-02-gpu0", "gpu-01-gpu1", "gpu-01-gpu2"]
        assert "sort: util" in static_text(app, "summary")
        await press(app, pilot, "s")  # memory
        assert keys(app, "gpus")[-1] == "gpu-01-gpu2"
        assert "sort: memory" in static_text(app, "summary")
        await press(app, pilot, "s")  # holder: held first
        assert keys(app, "gpus")[0] == "gpu-01-gpu0"
        await press(app, pilot, "s")  # back to node order
        assert keys(app, "gpus") == server
        assert "sort:" not in static_text(app, "summary")

    drive_at((80, 24), FakeSource(data), check)


def test_sort_by_memory_and_holder_on_many_gpus():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        await press(app, pilot, "s", "s")
        assert app.data is not None
        found = {key: gpu for key, gpu in gpus_of(app.data)}
        used = [found[key]["memory_used_mb"] for key in keys(app, "gpus")]
        assert used == sorted(used, reverse=True)
        await press(app, pilot, "s")
        assert keys(app, "gpus")[:2] == ["gpu-01-gpu0", "gpu-01-gpu2"]  # alice, bob

    drive_at((80, 24), FakeSource(many_gpus()), check)


def gpus_of(data: TopData) -> list[tuple[str, dict[str, Any]]]:
    return [(g["id"], g) for node in data.nodes["nodes"] for g in node["gpus"]]


def test_slash_filters_by_user_node_or_gpu():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        await press(app, pilot, "slash", *"alice", "enter")
        assert keys(app, "gpus") == ["gpu-01-gpu0"]
        assert "filter: alice" in static_text(app, "summary")
        assert app.focused is table(app, "gpus")
        field = app.query_one("#filter", Input)
        await press(app, pilot, "slash")
        assert field.value == "alice" and field.has_focus
        field.value = "GPU-03"  # a node, case-insensitive
        await press(app, pilot, "enter")
        assert keys(app, "gpus") == [f"gpu-03-gpu{i}" for i in range(4)]
        await press(app, pilot, "slash")
        field.value = "gpu-02-gpu1"  # a GPU
        await press(app, pilot, "enter")
        assert keys(app, "gpus") == ["gpu-02-gpu1"]
        await press(app, pilot, "slash", "escape")  # Esc clears the filter
        assert len(keys(app, "gpus")) == 20
        assert "filter" not in static_text(app, "summary")

    drive_at((80, 24), FakeSource(many_gpus()), check)


def test_c_confirms_then_cancels_own_job_through_the_client():
    source = FakeSource(many_gpus())
    controls = FakeControls("alice")

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        assert app.me == "alice"
        await press(app, pilot, "c")  # cursor on gpu-01-gpu0: alice's job 17
        assert isinstance(app.screen, ConfirmCancel)
        question = app.screen.query_one("#dialog", Static).content
        assert 'Cancel job 17 alice "train" on gpu-01-gpu0?' in question.plain
        await press(app, pilot, "n")
        assert not isinstance(app.screen, ConfirmCancel) and controls.cancelled == []
        assert "not cancelled" in static_text(app, "status")
        calls = source.calls
        await press(app, pilot, "c", "y")
        assert controls.cancelled == ["17"]
        await settle(app, pilot)
        assert source.calls == calls + 1  # refreshed after the cancel
        controls.error = ApiError(403, "not yours")
        await press(app, pilot, "c", "y")
        assert static_text(app, "status") == "cannot cancel job 17: not yours"

    drive_at((80, 24), source, check, controls)


def test_c_is_not_offered_for_other_users_jobs_or_free_gpus():
    controls = FakeControls("alice")

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        for row in (2, 3):  # bob's job 30, a free GPU
            table(app, "gpus").move_cursor(row=row)
            await press(app, pilot, "c")
            assert not isinstance(app.screen, ConfirmCancel)
            assert "only your own jobs (alice)" in static_text(app, "status")
        assert controls.cancelled == []

    drive_at((80, 24), FakeSource(many_gpus()), check, controls)


def test_c_without_identity_offers_nothing():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        await press(app, pilot, "c")
        assert not isinstance(app.screen, ConfirmCancel)
        assert "did not say who you are" in static_text(app, "status")

    drive_at((80, 24), FakeSource(many_gpus()), check, FakeControls(None))


def test_c_in_the_running_table_cancels_own_job():
    controls = FakeControls("alice")

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        await press(app, pilot, "3", "c")
        assert isinstance(app.screen, ConfirmCancel)
        await press(app, pilot, "y")
        assert controls.cancelled == ["17"]

    drive_at((80, 24), FakeSource(many_gpus()), check, controls)


def test_enter_lists_the_gpus_processes():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        await press(app, pilot, "enter")
        assert isinstance(app.screen, ProcessPanel)
        procs = app.screen.query_one("#processes", DataTable)
        rows = [[v.plain for v in procs.get_row(r.key)] for r in procs.ordered_rows]
        assert rows == [
            ["4242", "alice", "python train.py", "39000 MiB", "job 17"],
            ["999", "mallory", "miner", "1000 MiB", "stray"],
        ]
        title = app.screen.query_one("#panel-title", Static).content
        assert title.plain.startswith("gpu-01-gpu0 · NVIDIA H100 80GB HBM3 · job 17 alice")
        await press(app, pilot, "escape")
        assert not isinstance(app.screen, ProcessPanel)
        await press(app, pilot, "down", "enter")
        assert "no processes reported" in app.screen.query_one("#panel-title", Static).content.plain

    drive_at((80, 24), FakeSource(many_gpus()), check)


def test_hostile_strings_are_neutralised_in_the_new_widgets():
    data = many_gpus()
    first = data.nodes["nodes"][0]["gpus"][0]
    first["holder"] = {"kind": "job", "job_id": 17, "user": TITLE, "name": CLEAR + BIDI}
    first["processes"] = [
        {"pid": 1, "user": TITLE, "command": CLEAR + BIDI + C0C1, "used_memory_mb": 5,
         "kind": MARKUP, "job_id": None},
    ]  # fmt: skip
    first["model"] = MARKUP + BIDI
    controls = FakeControls(TITLE)  # whoami's answer is server text too
    controls.error = ApiError(409, f"no{TITLE}\n{BIDI}")

    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        await press(app, pilot, "c")
        question = app.screen.query_one("#dialog", Static).content
        assert isinstance(question, Text) and _control_free(question.plain.split("\n\n")[0])
        assert "job 17 \\x1b]0;pwned\\x07" in question.plain
        await press(app, pilot, "y")
        status = static_text(app, "status")
        assert _control_free(status) and status.startswith("cannot cancel job 17: no\\x1b")
        await press(app, pilot, "enter")
        panel = app.screen
        title = panel.query_one("#panel-title", Static).content
        assert isinstance(title, Text) and _control_free(title.plain)
        assert MARKUP in title.plain  # shown as text, never parsed
        procs = panel.query_one("#processes", DataTable)
        for row in procs.ordered_rows:
            for value in procs.get_row(row.key):
                assert isinstance(value, Text) and _control_free(value.plain), value
        assert procs.get_row_at(0)[1].plain == "\\x1b]0;pwned\\x07"
        await press(app, pilot, "escape")
        for line in screen_lines(table(app, "gpus")):
            assert _control_free(line), line

    drive_at((80, 24), FakeSource(data), check, controls)


def test_gpu_layout_keeps_columns_by_priority():
    assert gpu_layout(80).keys == ("node", "idx", "util", "memory", "holder", "flags")
    assert gpu_layout(60).keys == ("node", "idx", "util", "memory", "holder")
    assert set(gpu_layout(116).keys) >= {"temp", "power"}
    assert "model" in gpu_layout(130).keys
    assert gpu_layout(200).keys == tuple(c.key for c in GPU_COLUMNS)
    for width in (60, 80, 100, 120, 149):
        used = sum(size + 2 for _, size in gpu_layout(width).columns if size is not None)
        assert used <= width - 2, width


def test_resizing_recomputes_the_layout():
    async def check(app: TopApp, pilot: Pilot[None]) -> None:
        assert "model" in keys_of_columns(app) and table(app, "queue").display
        await pilot.resize_terminal(80, 24)
        await settle(app, pilot)
        assert "model" not in keys_of_columns(app) and not table(app, "queue").display
        assert {"holder", "flags"} <= set(keys_of_columns(app)) and fits(app, "gpus")
        assert len(keys(app, "gpus")) == 20  # rows put back under the new columns

    drive_at((180, 50), FakeSource(many_gpus()), check)


def keys_of_columns(app: TopApp) -> list[str | None]:
    return [column.key.value for column in table(app, "gpus").ordered_columns]


def test_client_controls_ask_the_client_like_whoami_and_cancel():
    cancelled: list[str] = []
    client = SimpleNamespace(
        user_name=lambda: "alice", jobs=SimpleNamespace(cancel=cancelled.append)
    )
    controls = ClientControls(client)  # type: ignore[arg-type]
    assert controls.whoami() == "alice"
    controls.cancel("17")
    assert cancelled == ["17"]
