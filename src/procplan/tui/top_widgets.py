"""The widgets and controls of ``procplan top`` beside its tables: who am I and cancel
(``Controls``), ``sync_table`` (the only way into a table: every cell a capped ``Text``),
the cancel confirmation, a GPU's process panel, the short summary line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from procplan.client import ProcPlanClient
from procplan.present import cell, clean_rich
from procplan.tui.top_rows import Cell, Row


def _same(old: object, new: object) -> bool:
    if isinstance(old, Text) and isinstance(new, Text):
        return old.plain == new.plain and old.spans == new.spans and old.style == new.style
    return type(old) is type(new) and old == new


def cursor_key(table: DataTable[Cell]) -> str | None:
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
    cursor = cursor_key(table)
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
