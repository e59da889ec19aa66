"""``procplan top``: a live Textual dashboard of the cluster.

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
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Static

from procplan.client import ApiError, ClientError, Job, ProcPlanClient, ServerUnreachable
from procplan.present import (
    MESSAGE_LIMIT,
    cell,
    clean_payload,
    clean_record,
    clean_rich,
    terminal_text,
)
from procplan.present.gpus import (
    NONE,
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


def _load(percent: float | None, label: str) -> Text:
    cell = bar(percent, 8)
    cell.append(f" {label}")
    return cell


def _memory(gpu: Payload) -> Text:
    used, total = gpu.get("memory_used_mb"), memory_total(gpu)
    label = NONE if used is None else f"{used / 1024:.1f}"
    label += f"/{total / 1024:.0f}G" if isinstance(total, int | float) else ""
    return _load(percent_of(used, total), label)


def _flags(gpu: Payload) -> Text:
    cell = Text()
    for position, (text, style) in enumerate(flag_labels(gpu)):
        cell.append(("  " if position else "") + text, style=style)
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


def gpu_rows(data: TopData, flagged_only: bool = False) -> list[Row]:
    """One row per GPU keyed by GPU id (a GPU-less node gets one ``node:ID`` row); nodes that
    are not online are dimmed; ``flagged_only`` keeps foreign or flagged GPUs."""
    rows: list[Row] = []
    for node in data.nodes.get("nodes") or []:
        dim = "dim" if node.get("state") != "online" else ""
        gpus = [g for g in node.get("gpus") or [] if isinstance(g, Mapping)]
        if not gpus and not flagged_only:
            empty: tuple[Cell, ...] = (_node_cell(node), "", _styled("no GPUs", "dim"))
            rows.append((f"node:{node.get('id')}", empty + ("",) * 6))
        for gpu in gpus:
            if flagged_only and not is_flagged(gpu):
                continue
            util = gpu.get("utilization_pct")
            cells = (
                _node_cell(node),
                str(gpu.get("index", "")),
                model_of(gpu),
                _load(percent_of(util, 100), number(util, "%")),
                _memory(gpu),
                number(gpu.get("temperature_c"), "°C"),
                number(gpu.get("power_w"), " W"),
                holder_text(gpu.get("holder"), data.at),
                _flags(gpu),
            )
            key = str(gpu.get("id") or f"{node.get('id')}:{gpu.get('index')}")
            rows.append((key, tuple(_dimmed(value, dim) for value in cells)))
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


class TopApp(App[None]):
    """The dashboard. ``source`` is called off the UI thread every ``refresh_s`` seconds."""

    TITLE = "procplan top"
    CSS = """
    #summary { height: 1; padding: 0 1; background: $boost; text-style: bold; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    #status.error { color: $error; text-style: bold; }
    DataTable { border: round $primary-darken-3; border-title-color: $text-muted; height: 1fr; }
    DataTable:focus { border: round $accent; border-title-color: $accent; }
    #gpus { height: 2fr; }
    #middle { height: 1fr; }
    #queue, #running { width: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("r", "refresh", "Refresh"),
        Binding("f", "toggle_flagged", "Flagged only"),
        Binding("1", "focus_table('gpus')", "GPUs", show=False),
        Binding("2", "focus_table('queue')", "Queue", show=False),
        Binding("3", "focus_table('running')", "Running", show=False),
        Binding("4", "focus_table('bookings')", "Bookings", show=False),
    ]

    def __init__(self, source: DataSource, refresh_s: float = 2.0) -> None:
        super().__init__()
        self.source = source
        self.refresh_s = refresh_s
        self.data: TopData | None = None
        self.flagged_only = False
        self.last_error: str | None = None
        self._fetching = False

    def compose(self) -> ComposeResult:
        yield Static("connecting…", id="summary")
        yield self._table("gpus")
        with Horizontal(id="middle"):
            yield self._table("queue")
            yield self._table("running")
        yield self._table("bookings")
        yield Static("", id="status")
        yield Footer()

    def _table(self, name: str) -> DataTable[Cell]:
        title, columns = TABLES[name]
        table: DataTable[Cell] = DataTable(id=name, cursor_type="row", zebra_stripes=True)
        table.border_title = title
        for column in columns:
            table.add_column(column, key=column)
        return table

    def on_mount(self) -> None:
        self.set_interval(self.refresh_s, self.action_refresh)
        self.action_refresh()

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
        status = self.query_one("#status", Static)
        status.remove_class("error")
        status.update(
            f"updated {data.at.astimezone(UTC):%H:%M:%S} UTC · refresh {self.refresh_s:g}s"
        )

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
        status = self.query_one("#status", Static)
        status.add_class("error")
        status.update(Text(text))

    def _render(self) -> None:
        data = self.data
        if data is None:
            return
        summary = summary_text(data.nodes.get("summary")) or "no summary"
        summary += f" · {len(data.pending)} pending · {len(data.running)} running"
        if self.flagged_only:
            summary += " · showing flagged GPUs only (f)"
        self.query_one("#summary", Static).update(Text(summary))
        sync_table(self._get("gpus"), gpu_rows(data, self.flagged_only))
        sync_table(self._get("queue"), queue_rows(data))
        sync_table(self._get("running"), running_rows(data))
        sync_table(self._get("bookings"), booking_rows(data))

    def _get(self, name: str) -> DataTable[Cell]:
        return self.query_one(f"#{name}", DataTable)

    # -- keys --------------------------------------------------------------------------------

    def action_toggle_flagged(self) -> None:
        self.flagged_only = not self.flagged_only
        self._render()

    def action_focus_table(self, name: str) -> None:
        self._get(name).focus()


def run_top(url: str, refresh_s: float = 2.0) -> None:
    """``procplan top``: the dashboard against the server at ``url`` until ``q``."""
    with ProcPlanClient(url) as client:
        TopApp(client_source(client), refresh_s).run()
