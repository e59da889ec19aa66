"""``procplan top``: a live Textual dashboard of the cluster.

Keys (shown in the footer): ``s`` cycles the GPU sort (node, util, memory, holder), ``/``
filters the GPUs by node, user or GPU, Enter lists the processes of the GPU under the cursor
(``ProcessPanel``, from the node reports in ``/api/v1/nodes``), ``c`` cancels the job under the
cursor after a ``ConfirmCancel`` dialog, offered only for the caller's own jobs (``Controls``:
``whoami`` at start, ``cancel`` like ``procplan cancel``; the server still decides), ``f``
flagged GPUs only, ``1``–``4`` tables, ``r`` refresh, ``q`` quit.

Small terminals: the GPU columns are chosen by priority to fit the width (``gpu_layout``: GPU,
util, memory, holder, flags first; temperature, power, model when there is room), and below
``COMPACT_HEIGHT`` lines one table shows at a time, borderless, so 80×24 lists 20 GPUs.

Four tables — GPUs (one row per GPU), the pending queue, running jobs and today's bookings —
under a one-line cluster summary. Data comes from a ``DataSource``: a plain callable returning a
``TopData`` (``client_source`` builds one over HTTP; tests pass a fake). It is called in a
worker thread on a timer so the UI never blocks on the network; each answer is merged into
the tables in place (cells updated by row key, cursor kept), so a refresh does not flicker.
When the server does not answer, the last data stays on screen under a status line.

Like the CLI it shows the server's decisions (reason, position, estimated start, flags) as
sent and never recomputes them.

Jobs arrive typed (``client.Job``, parsed once by the client); nodes and bookings as the
server's JSON. Server text is another user's text: ``TopApp.apply`` passes every string of each
fetch through ``present.clean_payload`` and ``present.clean_record`` (no escape sequence, control
or bidi character survives), and
``sync_table``, the only way into a table, turns every cell into a capped ``Text`` so Textual
never reads server text as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Static

from procplan.client import ApiError, ClientError, Job, ProcPlanClient, ServerUnreachable
from procplan.present import (
    MESSAGE_LIMIT,
    capped,
    cell,
    clean_payload,
    clean_record,
    clean_rich,
    terminal_text,
)
from procplan.present.gpus import (
    NONE,
    PROCESS_STYLE,
    STATE_STYLE,
    age_text,
    bar,
    clock_text,
    flag_labels,
    holder_text,
    is_flagged,
    memory_total,
    model_of,
    number,
    percent_of,
    summary_text,
)
from procplan.present.jobs import elapsed as elapsed_text
from procplan.present.jobs import eta, gpus_text, human_span, indices_text, node_text

Payload = Mapping[str, Any]
Cell = str | Text
Row = tuple[str, tuple[Cell, ...]]

LIST_LIMIT = 500


def _utc_now() -> datetime:
    return datetime.now(tz=UTC)


@dataclass(frozen=True)
class TopData:
    """One fetch: the ``/api/v1/nodes`` payload, pending and running jobs, today's bookings,
    and the instant they describe (relative times are rendered against it)."""

    nodes: Payload
    pending: Sequence[Job] = ()
    running: Sequence[Job] = ()
    bookings: Sequence[Payload] = ()
    at: datetime = field(default_factory=_utc_now)


DataSource = Callable[[], TopData]
"""Called in a worker thread; raises ``ClientError`` when the server cannot be asked."""


def displayable(data: TopData) -> TopData:
    """``data`` with every server string made terminal-safe (``present.clean_payload`` for
    the JSON, ``present.clean_record`` for the typed jobs)."""
    return replace(
        data,
        nodes=clean_payload(data.nodes),
        pending=[clean_record(job) for job in data.pending],
        running=[clean_record(job) for job in data.running],
        bookings=clean_payload(data.bookings),
    )


def today(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day holding ``now``, as ``[start, end)``."""
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def client_source(client: ProcPlanClient, clock: Callable[[], datetime] = _utc_now) -> DataSource:
    """A ``DataSource`` over HTTP: four GETs per refresh (nodes, pending, running, bookings
    overlapping today, cancelled ones left out)."""

    def fetch() -> TopData:
        now = clock()
        nodes = client.nodes.list()
        pending = client.jobs.list(state="pending", limit=LIST_LIMIT).jobs
        running = client.jobs.list(state="running", limit=LIST_LIMIT).jobs
        start, end = today(now)
        listed = client.bookings.list(start=start, end=end, limit=LIST_LIMIT).get("bookings")
        bookings = [b for b in listed or [] if b.get("status") != "cancelled"]
        bookings.sort(key=lambda b: (str(b.get("start")), str(b.get("id"))))
        return TopData(nodes, pending, running, bookings, now)

    return fetch


# -- rows (pure) -----------------------------------------------------------------------------


def _styled(text: str, style: str) -> Text:
    """A span-styled ``Text``: Rich compares spans (not the base style) in ``==``, and the
    table merge relies on that to notice a style change."""
    value = Text(text)
    if style and text:
        value.stylize(style)
    return value


def _load(percent: float | None, label: str, width: int = 8) -> Text:
    cell = bar(percent, width)
    cell.append(f" {label}")
    return cell


def _memory(gpu: Payload, narrow: bool = False) -> Text:
    used, total = gpu.get("memory_used_mb"), memory_total(gpu)
    if narrow:  # ``███ 40/80G``
        label = NONE if used is None else f"{used / 1024:.0f}"
        label += f"/{total / 1024:.0f}G" if isinstance(total, int | float) else ""
        return _load(percent_of(used, total), label, NARROW_BAR)
    label = NONE if used is None else f"{used / 1024:.1f}"
    label += f"/{total / 1024:.0f}G" if isinstance(total, int | float) else ""
    return _load(percent_of(used, total), label)


def _flags(gpu: Payload, narrow: bool = False) -> Text:
    cell = Text()
    separator = " " if narrow else "  "
    for position, (text, style) in enumerate(flag_labels(gpu, short=narrow)):
        cell.append((separator if position else "") + text, style=style)
    return cell


def _dimmed(value: Cell, dim: str) -> Cell:
    """A node that is not online shows its last readings dimmed: they are not current."""
    if not dim:
        return value
    if isinstance(value, Text):
        value.stylize(dim)
        return value
    return _styled(value, dim)


def _node_cell(node: Payload) -> Text:
    state = str(node.get("state") or "")
    name = str(node.get("id") or "?")
    if state == "online":
        return _styled(name, "")
    suffix = f" ({state} {age_text(node.get('last_seen_age_s'))})" if state == "offline" else ""
    return _styled(name + (suffix or f" ({state})"), STATE_STYLE.get(state, ""))


@dataclass(frozen=True)
class GpuColumn:
    """One column of the GPU table: ``priority`` decides which columns stay when the terminal
    is narrow (0 always stays); ``width`` is its width there (``flex`` columns take what is
    left, at least ``width`` and at most ``most``)."""

    key: str
    label: str
    priority: int
    width: int
    flex: bool = False
    most: int = 0


GPU_COLUMNS = (
    GpuColumn("node", "node", 0, 10),
    GpuColumn("idx", "#", 0, 2),
    GpuColumn("model", "model", 7, 16),
    GpuColumn("util", "util", 1, 8),
    GpuColumn("memory", "mem", 2, 12),
    GpuColumn("temp", "temp", 5, 4),
    GpuColumn("power", "power", 6, 5),
    GpuColumn("holder", "holder", 3, 14, flex=True, most=24),
    GpuColumn("flags", "flags", 4, 10, flex=True, most=18),
)
"""In display order. Kept first: GPU (node and index), util, memory, holder, flags; then
temperature, power, model."""

WIDE = 150
"""From this many columns of table, every column is shown at its natural width."""

NARROW_BAR = 3
PADDING = 2  # a DataTable pads each cell by one on either side
SCROLLBAR = 2


@dataclass(frozen=True)
class GpuLayout:
    """Which GPU columns show and how wide (``None``: fit the content)."""

    columns: tuple[tuple[GpuColumn, int | None], ...]
    narrow: bool

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(column.key for column, _ in self.columns)


def gpu_layout(width: int) -> GpuLayout:
    """The columns that fit ``width`` cells (the table's inner width, scrollbar included):
    every column at its natural width from ``WIDE`` on; below it, fixed narrow widths taken by
    priority while they fit, flex columns shrunk to fit down to their least width."""
    if width >= WIDE:
        return GpuLayout(tuple((column, None) for column in GPU_COLUMNS), narrow=False)
    room = width - SCROLLBAR
    chosen: dict[str, int] = {}
    for column in sorted(GPU_COLUMNS, key=lambda c: c.priority):
        used = sum(w + PADDING for w in chosen.values())
        wanted = column.most if column.flex else column.width
        if used + wanted + PADDING <= room:
            chosen[column.key] = wanted
        elif column.flex and used + column.width + PADDING <= room:
            chosen[column.key] = room - used - PADDING
        elif column.priority == 0:
            chosen[column.key] = column.width
    spare = room - sum(w + PADDING for w in chosen.values())
    if spare > 0 and "holder" in chosen:
        chosen["holder"] += spare
    columns = tuple((c, chosen[c.key]) for c in GPU_COLUMNS if c.key in chosen)
    return GpuLayout(columns, narrow=True)


SORTS = ("node", "util", "memory", "holder")
"""``s`` cycles through these: server order (by node), busiest first, fullest memory first,
then by holder (free GPUs last)."""


def _sort_key(by: str, gpu: Payload, at: datetime) -> tuple[Any, ...]:
    if by == "util":
        util = gpu.get("utilization_pct")
        return (0, -util) if isinstance(util, int | float) else (1, 0.0)
    if by == "memory":
        used = percent_of(gpu.get("memory_used_mb"), memory_total(gpu))
        return (0, -used) if used is not None else (1, 0.0)
    if by == "holder":
        holder = holder_text(gpu.get("holder"), at)
        return (0, holder.casefold()) if holder else (1, "")
    return ()


def matches(text: str, node: Payload, gpu: Payload | None, at: datetime) -> bool:
    """Whether the filter ``text`` (case-insensitive) is in the node's id or name, the GPU's
    id, index, uuid or model, its holder, or a user of one of its processes."""
    needle = text.strip().casefold()
    if not needle:
        return True
    fields: list[object] = [node.get("id"), node.get("name")]
    if gpu is not None:
        fields += [gpu.get("id"), gpu.get("uuid"), model_of(gpu)]
        fields.append(f"{node.get('id')}:{gpu.get('index')}")
        holder = gpu.get("holder")
        fields.append(holder_text(holder, at))
        if isinstance(holder, Mapping):
            fields.append(holder.get("user"))
        for process in gpu.get("processes") or []:
            if isinstance(process, Mapping):
                fields.append(process.get("user"))
    return any(needle in str(field).casefold() for field in fields if field is not None)


def _gpu_cells(
    node: Payload, gpu: Payload, at: datetime, layout: GpuLayout | None
) -> tuple[Cell, ...]:
    narrow = layout is not None and layout.narrow
    util = gpu.get("utilization_pct")
    if narrow:
        util_cell = _load(percent_of(util, 100), number(util, "%"), NARROW_BAR)
    else:
        util_cell = _load(percent_of(util, 100), number(util, "%"))
    every: dict[str, Cell] = {
        "node": _node_cell(node),
        "idx": str(gpu.get("index", "")),
        "model": model_of(gpu),
        "util": util_cell,
        "memory": _memory(gpu, narrow),
        "temp": number(gpu.get("temperature_c"), "°C"),
        "power": number(gpu.get("power_w"), " W" if not narrow else "W"),
        "holder": holder_text(gpu.get("holder"), at),
        "flags": _flags(gpu, narrow),
    }
    keys = layout.keys if layout is not None else tuple(c.key for c in GPU_COLUMNS)
    return tuple(every[key] for key in keys)


def gpu_rows(
    data: TopData,
    flagged_only: bool = False,
    *,
    layout: GpuLayout | None = None,
    sort: str = "node",
    text: str = "",
) -> list[Row]:
    """One row per GPU keyed by GPU id (a GPU-less node gets one ``node:ID`` row); nodes that
    are not online are dimmed; ``flagged_only`` keeps foreign or flagged GPUs; ``text`` keeps
    the rows it ``matches``; ``sort`` is one of ``SORTS`` (stable: ties keep server order);
    ``layout`` picks the columns (every one when ``None``)."""
    width = len(layout.columns) if layout is not None else len(GPU_COLUMNS)
    entries: list[tuple[Payload, Payload | None]] = []
    for node in data.nodes.get("nodes") or []:
        gpus = [g for g in node.get("gpus") or [] if isinstance(g, Mapping)]
        if not gpus and not flagged_only and matches(text, node, None, data.at):
            entries.append((node, None))
        for gpu in gpus:
            if flagged_only and not is_flagged(gpu):
                continue
            if matches(text, node, gpu, data.at):
                entries.append((node, gpu))
    if sort != "node":
        entries.sort(key=lambda e: _sort_key(sort, e[1], data.at) if e[1] else (2,))
    rows: list[Row] = []
    for owner, entry in entries:
        if entry is None:
            empty: tuple[Cell, ...] = (_node_cell(owner), "", _styled("no GPUs", "dim"))
            rows.append((f"node:{owner.get('id')}", (empty + ("",) * width)[:width]))
            continue
        dim = "dim" if owner.get("state") != "online" else ""
        cells = _gpu_cells(owner, entry, data.at, layout)
        key = gpu_key(owner, entry)
        rows.append((key, tuple(_dimmed(value, dim) for value in cells)))
    return rows


def gpu_key(node: Payload, gpu: Payload) -> str:
    return str(gpu.get("id") or f"{node.get('id')}:{gpu.get('index')}")


def find_gpu(data: TopData, key: str) -> tuple[Payload, Payload] | None:
    """The node and GPU of the row ``key``."""
    for node in data.nodes.get("nodes") or []:
        for gpu in node.get("gpus") or []:
            if isinstance(gpu, Mapping) and gpu_key(node, gpu) == key:
                return node, gpu
    return None


def own_job(holder: object, me: str | None) -> str | None:
    """The id of the job holding a GPU when that job is ``me``'s; ``None`` otherwise."""
    if me is None or not isinstance(holder, Mapping) or holder.get("kind") != "job":
        return None
    if holder.get("user") != me or holder.get("job_id") is None:
        return None
    return str(holder["job_id"])


def process_rows(gpu: Payload) -> list[Row]:
    """A GPU's processes as the node agent reported them: pid, user, command, memory and
    what they are (the job they belong to, or ``stray``/``unbooked``...)."""
    rows: list[Row] = []
    for position, process in enumerate(gpu.get("processes") or []):
        if not isinstance(process, Mapping):
            continue
        memory = process.get("used_memory_mb")
        job = process.get("job_id")
        kind = str(process.get("kind") or "")
        what = f"job {job}" if job is not None else kind
        cells: tuple[Cell, ...] = (
            str(process.get("pid", "")),
            str(process.get("user") or "?"),
            str(process.get("command") or ""),
            number(memory, " MiB"),
            _styled(what, PROCESS_STYLE.get(kind, "")),
        )
        rows.append((f"{position}:{process.get('pid')}", cells))
    return rows


def queue_rows(data: TopData) -> list[Row]:
    """Pending jobs in queue order: the server's position, reason and estimated start."""
    jobs = sorted(data.pending, key=lambda j: (j.queue_position or 1 << 30, j.id))
    return [
        (
            job.id,
            (
                job.id,
                job.user,
                job.name,
                gpus_text(job),
                str(job.queue_position or ""),
                _styled(job.reason or "", "yellow"),
                eta(job, data.at),
            ),
        )
        for job in jobs
    ]


def running_rows(data: TopData) -> list[Row]:
    """Running jobs: where (node and GPU indices), for how long, and their time limit."""
    rows: list[Row] = []
    for job in data.running:
        where = node_text(job)
        indices = indices_text(job)
        limit = job.time_limit_s
        cells: tuple[Cell, ...] = (
            job.id,
            job.user,
            job.name,
            f"{where}:{indices}" if indices else where,
            elapsed_text(job, data.at),
            human_span(limit) if limit is not None else "none",
        )
        rows.append((job.id, cells))
    return rows


def booking_rows(data: TopData) -> list[Row]:
    """Today's bookings: node, GPUs, owner, label and the span (UTC)."""
    rows: list[Row] = []
    for booking in data.bookings:
        ident = str(booking.get("id", "?"))
        status = str(booking.get("status") or "")
        span = (
            f"{clock_text(booking.get('start'), data.at)}–{clock_text(booking.get('end'), data.at)}"
        )
        cells: tuple[Cell, ...] = (
            ident,
            str(booking.get("node_id") or ""),
            str(len(booking.get("gpu_ids") or [])),
            str(booking.get("user") or ""),
            str(booking.get("label") or ""),
            span,
            _styled(status, "" if status == "active" else "dim"),
        )
        rows.append((ident, cells))
    return rows


# -- merging rows into a DataTable -------------------------------------------------------------


def _same(old: object, new: object) -> bool:
    if isinstance(old, Text) and isinstance(new, Text):
        return old.plain == new.plain and old.spans == new.spans and old.style == new.style
    return type(old) is type(new) and old == new


def _cursor_key(table: DataTable[Cell]) -> str | None:
    if table.row_count == 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # the cursor can sit past the last row while rows change
        return None


def safe_cell(value: Cell) -> Text:
    """A cell as Textual may show it: a plain ``str`` would be parsed as markup, so every cell
    becomes a ``Text``, sanitised and capped at ``present.CELL_LIMIT``."""
    return clean_rich(value) if isinstance(value, Text) else cell(value)


def sync_table(table: DataTable[Cell], rows: Sequence[Row]) -> None:
    """Make ``table`` show ``rows`` with the least change: rows whose key stays get only their
    changed cells updated, vanished rows are removed, new rows appended; the table is rebuilt
    only when the order of kept rows changes. The cursor stays on its row when that survives.
    Every cell goes through ``safe_cell`` first."""
    rows = [(key, tuple(safe_cell(value) for value in cells)) for key, cells in rows]
    cursor = _cursor_key(table)
    wanted = {key for key, _ in rows}
    existing = [row.key.value for row in table.ordered_rows]
    for key in existing:
        if key not in wanted and key is not None:
            table.remove_row(key)
    kept = [key for key in existing if key in wanted]
    if [key for key, _ in rows[: len(kept)]] != kept:
        table.clear()
        kept = []
    kept_set = set(kept)
    columns = [column.key for column in table.ordered_columns]
    for key, cells in rows:
        if key not in kept_set:
            table.add_row(*cells, key=key)
            continue
        for column, old, new in zip(columns, table.get_row(key), cells, strict=True):
            if not _same(old, new):
                table.update_cell(key, column, new, update_width=True)
    if cursor is not None and cursor in wanted:
        row = table.get_row_index(cursor)
        if row != table.cursor_row:
            table.move_cursor(row=row, scroll=False)


# -- the app -----------------------------------------------------------------------------------

TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "gpus": (
        "1 GPUs",
        ("node", "idx", "model", "util", "memory", "temp", "power", "holder", "flags"),
    ),
    "queue": ("2 Queue", ("id", "user", "name", "gpus", "pos", "reason", "est. start")),
    "running": ("3 Running", ("id", "user", "name", "node:gpus", "elapsed", "limit")),
    "bookings": (
        "4 Bookings today (UTC)",
        ("id", "node", "gpus", "user", "label", "time", "status"),
    ),
}


COMPACT_HEIGHT = 36
"""Below this many lines only one table shows at a time (the GPUs first; ``2``–``4`` switch),
so a 24-line terminal lists 20 GPUs at once."""


class Controls(Protocol):
    """What ``top`` may do besides reading: who am I, and cancel one of my jobs."""

    def whoami(self) -> str | None: ...

    def cancel(self, job_id: str) -> None: ...


@dataclass
class ClientControls:
    """``Controls`` over HTTP, like ``procplan whoami`` and ``procplan cancel``."""

    client: ProcPlanClient

    def whoami(self) -> str | None:
        return self.client.user_name()

    def cancel(self, job_id: str) -> None:
        self.client.jobs.cancel(job_id)


class GpuTable(DataTable[Cell]):
    """The GPU table: Enter opens the processes of the GPU under the cursor."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "app.processes", "Processes", key_display="⏎"),
    ]


class ConfirmCancel(ModalScreen[bool]):
    """``Cancel job 17 (train) on gpu-01-gpu0?`` — ``y`` confirms, ``n`` or Escape does not."""

    CSS = """
    ConfirmCancel { align: center middle; }
    #dialog { width: 60; max-width: 100%; height: auto; padding: 1 2;
              border: thick $error; background: $surface; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes, cancel"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: Text) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        text = self.question.copy()
        text.append("\n\n[y] yes, cancel it    [n] no", style="bold")
        yield Static(text, id="dialog")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ProcessPanel(ModalScreen[None]):
    """A GPU's processes (pid, user, command, memory, what they are), from the node report."""

    CSS = """
    ProcessPanel { align: center middle; }
    #panel { width: 100%; height: 100%; border: round $accent; background: $surface; }
    #panel-title { height: auto; padding: 0 1; }
    #processes { height: 1fr; border: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, title: Text, rows: Sequence[Row]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(id="panel"):
            yield Static(self.title_text, id="panel-title")
            table: DataTable[Cell] = DataTable(id="processes", cursor_type="row")
            for column in ("pid", "user", "command", "memory", "what"):
                table.add_column(column, key=column)
            yield table
        yield Footer()

    def on_mount(self) -> None:
        sync_table(self.query_one("#processes", DataTable), self.rows)

    def action_close(self) -> None:
        self.dismiss(None)


def short_summary(summary: object) -> str:
    """``2 nodes · 5/16 GPUs used · 2 flagged``: the summary line for 80 columns."""
    if not isinstance(summary, Mapping):
        return "no summary"
    text = f"{summary.get('nodes', 0)} nodes"
    if summary.get("offline"):
        text += f" ({summary['offline']} off)"
    text += f" · {summary.get('gpus_in_use', 0)}/{summary.get('gpus', 0)} GPUs used"
    flagged = summary.get("flagged_gpus")
    return text + (f" · {flagged} flagged" if flagged else "")


class TopScreen(Screen[None]):
    """The main screen: tells the app when the terminal changes size (``App`` itself does
    not see the resize) so the tables are arranged again."""

    def on_resize(self) -> None:
        app = self.app
        if isinstance(app, TopApp):
            app.arrange_tables()


class TopApp(App[None]):
    """The dashboard. ``source`` is called off the UI thread every ``refresh_s`` seconds;
    ``controls`` (optional) say who we are and cancel our jobs."""

    TITLE = "procplan top"
    ENABLE_COMMAND_PALETTE = False  # its footer entry would hide our last key at 80 columns
    CSS = """
    #summary { height: 1; padding: 0 1; background: $boost; text-style: bold; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    #status.error { color: $error; text-style: bold; }
    #filter { height: 1; border: none; padding: 0 1; display: none; }
    #filter.-active { display: block; }
    DataTable { border: round $primary-darken-3; border-title-color: $text-muted; height: 1fr; }
    DataTable:focus { border: round $accent; border-title-color: $accent; }
    DataTable.-compact, DataTable.-compact:focus { border: none; }
    #gpus { height: 2fr; }
    #middle { height: 1fr; }
    #queue, #running { width: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("s", "sort", "Sort"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("c", "cancel_job", "Cancel"),
        Binding("f", "toggle_flagged", "Flagged"),
        Binding("r", "refresh", "Refresh"),
        Binding("1", "focus_table('gpus')", "GPUs", show=False),
        Binding("2", "focus_table('queue')", "Queue", show=False),
        Binding("3", "focus_table('running')", "Running", show=False),
        Binding("4", "focus_table('bookings')", "Bookings", show=False),
    ]

    def __init__(
        self, source: DataSource, refresh_s: float = 2.0, controls: Controls | None = None
    ) -> None:
        super().__init__()
        self.source = source
        self.refresh_s = refresh_s
        self.controls = controls
        self.me: str | None = None
        self.data: TopData | None = None
        self.flagged_only = False
        self.sort = SORTS[0]
        self.filter_text = ""
        self.compact = False
        self.shown = "gpus"
        self.layout = gpu_layout(WIDE)
        self.last_error: str | None = None
        self._fetching = False

    def compose(self) -> ComposeResult:
        yield Static("connecting…", id="summary")
        yield self._table("gpus")
        with Horizontal(id="middle"):
            yield self._table("queue")
            yield self._table("running")
        yield self._table("bookings")
        yield Input(placeholder="filter: node, user or GPU (Enter keeps, Esc clears)", id="filter")
        yield Static("", id="status")
        yield Footer()

    def _table(self, name: str) -> DataTable[Cell]:
        title, columns = TABLES[name]
        kind = GpuTable if name == "gpus" else DataTable
        table: DataTable[Cell] = kind(id=name, cursor_type="row", zebra_stripes=True)
        table.border_title = title
        if name != "gpus":
            for column in columns:
                table.add_column(column, key=column)
        return table

    def on_mount(self) -> None:
        self.arrange_tables()
        self.set_interval(self.refresh_s, self.action_refresh)
        if self.controls is not None:
            self.run_worker(self._whoami, thread=True, group="whoami")
        self.action_refresh()

    def get_default_screen(self) -> Screen[None]:
        return TopScreen(id="_default")

    # -- layout ------------------------------------------------------------------------------

    def arrange_tables(self) -> None:
        """Single table when short; GPU columns by priority to fit the width."""
        width, height = self.size
        self.compact = height < COMPACT_HEIGHT
        for name in TABLES:
            table = self._get(name)
            table.set_class(self.compact, "-compact")
            table.display = not self.compact or name == self.shown
        self.query_one("#middle").display = not self.compact or self.shown in ("queue", "running")
        inner = width if self.compact else width - 2  # the border
        layout = gpu_layout(inner)
        if layout != self.layout or not self._get("gpus").columns:
            self.layout = layout
            table = self._get("gpus")
            table.clear(columns=True)
            for column, size in layout.columns:
                table.add_column(column.label, key=column.key, width=size)
            self._render()

    # -- fetching (worker thread) ------------------------------------------------------------

    def action_refresh(self) -> None:
        """Fetch now unless a fetch is already under way."""
        if self._fetching:
            return
        self._fetching = True
        self.run_worker(self._fetch, thread=True, group="fetch")

    def _fetch(self) -> None:
        try:
            data = self.source()
        except ClientError as exc:
            self._deliver(self.show_error, exc)
        else:
            self._deliver(self.apply, data)
        finally:
            self._fetching = False

    def _whoami(self) -> None:
        assert self.controls is not None
        try:
            me = self.controls.whoami()
        except ClientError:
            return  # cancelling stays off; everything else works
        self._deliver(self._set_me, me)

    def _set_me(self, me: str | None) -> None:
        self.me = terminal_text(me) if me else None

    def _deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        with suppress(RuntimeError):  # the app closed while we were fetching
            self.call_from_thread(callback, value)

    # -- rendering (UI thread) ---------------------------------------------------------------

    def apply(self, data: TopData) -> None:
        """Show ``data`` (made terminal-safe first): merge every table in place and clear any
        error line."""
        self.data = displayable(data)
        self.last_error = None
        self._render()
        self._set_status(
            f"updated {data.at.astimezone(UTC):%H:%M:%S} UTC · refresh {self.refresh_s:g}s"
        )

    def _set_status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#status", Static)
        status.set_class(error, "error")
        status.update(Text(terminal_text(text)))

    def show_error(self, exc: ClientError) -> None:
        """Keep the last data; say why it is stale and that we keep trying."""
        if isinstance(exc, ServerUnreachable):
            text = f"cannot reach server at {exc.url}: {exc.reason}"
        elif isinstance(exc, ApiError):
            text = f"server error: {exc.message}"
        else:
            text = str(exc)
        text = terminal_text(text, MESSAGE_LIMIT) + " — retrying"
        text += f" every {self.refresh_s:g}s"
        if self.data is not None:
            text += f" (showing data from {self.data.at.astimezone(UTC):%H:%M:%S} UTC)"
        self.last_error = text
        self._set_status(text, error=True)

    def _render(self) -> None:
        data = self.data
        if data is None:
            return
        counts = data.nodes.get("summary")
        long = summary_text(counts) or "no summary"
        summary = short_summary(counts) if self.compact else long
        summary += f" · {len(data.pending)} pending · {len(data.running)} running"
        if self.compact and self.shown != "gpus":
            summary = f"{TABLES[self.shown][0][2:]} (1 for GPUs) · " + summary
        if self.sort != SORTS[0]:
            summary += f" · sort: {self.sort}"
        if self.filter_text:
            summary += f" · filter: {capped(self.filter_text)}"
        if self.flagged_only:
            summary += " · showing flagged GPUs only (f)"
        self.query_one("#summary", Static).update(Text(terminal_text(summary)))
        rows = gpu_rows(
            data, self.flagged_only, layout=self.layout, sort=self.sort, text=self.filter_text
        )
        sync_table(self._get("gpus"), rows)
        sync_table(self._get("queue"), queue_rows(data))
        sync_table(self._get("running"), running_rows(data))
        sync_table(self._get("bookings"), booking_rows(data))

    def _get(self, name: str) -> DataTable[Cell]:
        return self.query_one(f"#{name}", DataTable)

    # -- keys --------------------------------------------------------------------------------

    def action_toggle_flagged(self) -> None:
        self.flagged_only = not self.flagged_only
        self._render()

    def action_sort(self) -> None:
        """Cycle the GPU sort: node → util → memory → holder → node."""
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self._render()

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.add_class("-active")
        field.value = self.filter_text
        field.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value
            self._render()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self._close_filter()

    def on_key(self, event: Any) -> None:
        field = self.query_one("#filter", Input)
        if event.key == "escape" and field.has_focus:
            field.value = ""
            self.filter_text = ""
            self._close_filter()
            event.stop()

    def _close_filter(self) -> None:
        self.query_one("#filter", Input).remove_class("-active")
        self._get(self.shown).focus()
        self._render()

    def action_focus_table(self, name: str) -> None:
        self.shown = name
        if self.compact:
            self.arrange_tables()
            self._render()
        self._get(name).focus()

    def on_descendant_focus(self, event: Any) -> None:
        widget = event.widget
        if isinstance(widget, DataTable) and widget.id in TABLES:
            self.shown = widget.id

    def _cursor_row(self, name: str) -> str | None:
        table = self._get(name)
        return _cursor_key(table) if table.display else None

    def _focused_table(self) -> str:
        focused = self.focused
        if isinstance(focused, DataTable) and focused.id in TABLES:
            return str(focused.id)
        return self.shown

    def action_processes(self) -> None:
        """Open the processes of the GPU under the cursor."""
        data, key = self.data, self._cursor_row("gpus")
        found = find_gpu(data, key) if data is not None and key else None
        if data is None or found is None:
            return
        node, gpu = found
        title = Text(f"{gpu_key(node, gpu)} · {model_of(gpu)} · ", style="bold")
        title.append(holder_text(gpu.get("holder"), data.at) or "free")
        rows = process_rows(gpu)
        if not rows:
            title.append("\nno processes reported", style="dim")
        self.push_screen(ProcessPanel(clean_rich(title, None), rows))

    def action_cancel_job(self) -> None:
        """``c``: cancel the job under the cursor if it is ours, after a confirmation."""
        if self.data is None:
            return
        name = self._focused_table()
        job_id: str | None = None
        about = ""
        if name == "gpus":
            key = self._cursor_row("gpus")
            found = find_gpu(self.data, key) if key else None
            holder = found[1].get("holder") if found else None
            job_id = own_job(holder, self.me)
            if job_id is not None and found is not None:
                about = f"{holder_text(holder, self.data.at)} on {key}"
        elif name == "running":
            key = self._cursor_row("running")
            job = next((j for j in self.data.running if j.id == key), None)
            if job is not None and self.me is not None and job.user == self.me:
                job_id = job.id
                about = f'job {job.id} {job.user} "{job.name}" on {node_text(job)}'
        if job_id is None:
            if self.controls is None:
                why = "cancelling needs a server connection"
            elif self.me is None:
                why = "cannot cancel: the server did not say who you are"
            else:
                why = f"only your own jobs ({self.me}) can be cancelled: pick a GPU your job holds"
            self._set_status(why, error=True)
            return
        question = Text(f"Cancel {capped(about, 200)}?", style="bold")
        self.push_screen(ConfirmCancel(question), lambda yes: self._confirmed(job_id, yes))

    def _confirmed(self, job_id: str, yes: bool | None) -> None:
        if not yes or self.controls is None:
            self._set_status(f"job {job_id} not cancelled")
            return
        controls = self.controls

        def cancel() -> None:
            try:
                controls.cancel(job_id)
            except ClientError as exc:
                message = exc.message if isinstance(exc, ApiError) else str(exc)
                self._deliver(
                    lambda text: self._set_status(text, error=True),
                    f"cannot cancel job {job_id}: {terminal_text(message, MESSAGE_LIMIT)}",
                )
            else:
                self._deliver(self._set_status, f"cancelled job {job_id}")
                self._deliver(lambda _: self.action_refresh(), None)

        self.run_worker(cancel, thread=True, group="cancel")


def run_top(url: str, refresh_s: float = 2.0, act_as: str | None = None) -> None:
    """``procplan top``: the dashboard against the server at ``url`` until ``q``."""
    with ProcPlanClient(url, act_as=act_as) as client:
        TopApp(client_source(client), refresh_s, ClientControls(client)).run()
