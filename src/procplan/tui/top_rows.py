"""The data of ``procplan top`` and its rows: what one fetch holds (``TopData``), which GPU
columns fit a width (``gpu_layout``), sorting and filtering, each table's rows (plain
values; ``top_widgets.sync_table`` puts them into tables). Independent of the app, which
composes them; tests call them directly."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.text import Text

from procplan.client import Job, ProcPlanClient
from procplan.present import (
    clean_payload,
    clean_record,
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
