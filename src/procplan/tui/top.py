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

from collections.abc import Callable
from contextlib import suppress
from datetime import UTC
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from procplan.client import ApiError, ClientError, ProcPlanClient, ServerUnreachable
from procplan.present import (
    MESSAGE_LIMIT,
    capped,
    clean_rich,
    terminal_text,
)
from procplan.present.gpus import (
    holder_text,
    model_of,
    summary_text,
)
from procplan.present.jobs import node_text
from procplan.tui.top_rows import (
    SORTS,
    WIDE,
    Cell,
    DataSource,
    TopData,
    booking_rows,
    client_source,
    displayable,
    find_gpu,
    gpu_key,
    gpu_layout,
    gpu_rows,
    own_job,
    process_rows,
    queue_rows,
    running_rows,
)
from procplan.tui.top_widgets import (
    TABLES,
    ClientControls,
    ConfirmCancel,
    Controls,
    GpuTable,
    ProcessPanel,
    cursor_key,
    short_summary,
    sync_table,
)

COMPACT_HEIGHT = 36
"""Below this many lines only one table shows at a time (the GPUs first; ``2``–``4`` switch),
so a 24-line terminal lists 20 GPUs at once."""


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
        return cursor_key(table) if table.display else None

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
