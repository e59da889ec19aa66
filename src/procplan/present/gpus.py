"""GPUs and nodes as terminal text, shared by ``procplan nodes`` and ``procplan top``.

Pure functions over the node objects the server sends (``/api/v1/nodes``): utilisation bars,
memory, holders, processes and the flags (in use without a booking, booked but idle, foreign
processes). Every string that came from the server goes through ``capped`` or ``cell``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from procplan.core.timeutil import aware_moment
from procplan.present.jobs import human_span
from procplan.present.safe import MESSAGE_LIMIT, capped, terminal_text

Payload = Mapping[str, Any]

EMPTY_CLUSTER = (
    "The server knows no nodes yet. Start `procplan agent` on each GPU machine "
    "(or give the server a topology with --config)."
)

NONE = "–"

ACTIVE_STATES = frozenset({"pending", "running"})

STATE_STYLE = {"online": "bold green", "offline": "bold red", "unmanaged": "yellow"}

FLAG_LABELS = {
    "unbooked_use": ("⚠ in use without booking", "bold red"),
    "idle_booking": ("⚠ booked but idle", "yellow"),
    "idle_warned": ("⚠ idle: release pending", "bold yellow"),
}

FOREIGN_LABEL = ("⚠ foreign process", "magenta")

SHORT_FLAG_LABELS = {
    "unbooked_use": ("⚠ unbooked", "bold red"),
    "idle_booking": ("⚠ idle", "yellow"),
    "idle_warned": ("⚠ releasing", "bold yellow"),
}
"""The same flags in a narrow column (``procplan top`` at 80 columns)."""

SHORT_FOREIGN_LABEL = ("⚠ foreign", "magenta")

PROCESS_STYLE = {"stray": "red", "unbooked": "red", "booked": "yellow"}


def number(value: object, unit: str = "", digits: int = 0) -> str:
    """``61°C``, ``402 W``; ``–`` for a null (or non-numeric) reading."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return NONE
    return f"{value:.{digits}f}{unit}"


def level_style(percent: float | None) -> str:
    """Colour of a load: green below 50 %, yellow below 90 %, red from there."""
    if percent is None:
        return "dim"
    if percent < 50:
        return "green"
    return "yellow" if percent < 90 else "red"


def percent_of(used: object, total: object) -> float | None:
    if not isinstance(used, int | float) or not isinstance(total, int | float) or total <= 0:
        return None
    return max(0.0, min(100.0, 100.0 * used / total))


def bar(percent: float | None, width: int = 10) -> Text:
    """``█████░░░░░`` coloured by level; all dim ``░`` when the reading is null."""
    if percent is None:
        return Text("░" * width, style="dim")
    filled = round(max(0.0, min(100.0, percent)) * width / 100)
    text = Text("█" * filled, style=level_style(percent))
    text.append("░" * (width - filled), style="dim")
    return text


def model_of(gpu: Payload) -> str:
    """The GPU model; servers before ADR 0006 called it ``kind``."""
    return capped(gpu.get("model") or gpu.get("kind") or "?")


def memory_total(gpu: Payload) -> object:
    """Total memory (MB); servers before ADR 0006 sent only ``memory_mb``."""
    total = gpu.get("memory_total_mb")
    return total if total is not None else gpu.get("memory_mb")


def memory_text(gpu: Payload) -> str:
    """``40000 / 81559 MB``; ``– / 81559 MB`` without a reading; ``–`` without either."""
    used, total = gpu.get("memory_used_mb"), memory_total(gpu)
    if used is None and total is None:
        return NONE
    return f"{number(used)} / {number(total)} MB"


def age_text(seconds: object) -> str:
    """``2s``, ``3m``, ``1h05m``; ``–`` when unknown."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return NONE
    return human_span(seconds)


def clock_text(value: object, now: datetime) -> str:
    """``18:00`` (UTC) today, ``11-23 18:00`` another day; the text as sent if unparsable."""
    moment = aware_moment(value)
    if moment is None:
        return capped(value) if value else NONE
    moment = moment.astimezone(UTC)
    if moment.date() == now.astimezone(UTC).date():
        return moment.strftime("%H:%M")
    return moment.strftime("%m-%d %H:%M")


def holder_text(holder: object, now: datetime) -> str:
    """``job 17 alice "train"`` or ``booking #3 bob until 18:00``; empty when free."""
    if not isinstance(holder, Mapping):
        return ""
    user = capped(holder.get("user") or "?")
    if holder.get("kind") == "job":
        name = holder.get("name")
        quoted = f' "{capped(name)}"' if name else ""
        return f"job {capped(holder.get('job_id'))} {user}{quoted}"
    if holder.get("kind") == "booking":
        label = holder.get("label")
        text = f"booking #{capped(holder.get('booking_id'))} {user}"
        text += f" ({capped(label)})" if label else ""
        return text + (f" until {clock_text(holder['end'], now)}" if holder.get("end") else "")
    return capped(holder.get("kind") or "")


def flag_labels(gpu: Payload, short: bool = False) -> list[tuple[str, str]]:
    """``(text, style)`` for each flag the server raised; ``foreign`` when no flag says more;
    ``short``: the narrow spellings (``⚠ unbooked``)."""
    flags = [capped(flag) for flag in gpu.get("flags") or []]
    known = SHORT_FLAG_LABELS if short else FLAG_LABELS
    labels = [known.get(flag, (f"⚠ {flag}", "red")) for flag in flags]
    if gpu.get("foreign") and "unbooked_use" not in flags:
        labels.insert(0, SHORT_FOREIGN_LABEL if short else FOREIGN_LABEL)
    return labels


def is_flagged(gpu: Payload) -> bool:
    return bool(gpu.get("flags")) or bool(gpu.get("foreign"))


def process_text(process: Payload, width: int = 32) -> Text:
    """``alice/python train.py(39000M)``, red for stray/unbooked, yellow for booked-but-no-job."""
    command = capped(process.get("command") or process.get("pid") or "?", width)
    memory = process.get("used_memory_mb")
    text = f"{capped(process.get('user') or '?')}/{command}" + (
        f"({capped(memory)}M)" if memory is not None else ""
    )
    return Text(text, style=PROCESS_STYLE.get(str(process.get("kind")), ""))


def summary_text(summary: object) -> str:
    """``3 nodes (2 online, 1 offline) · 5/16 GPUs in use · 1 foreign · 2 flagged``."""
    if not isinstance(summary, Mapping):
        return ""
    states = ", ".join(
        f"{summary[key]} {key}" for key in ("online", "offline", "unmanaged") if summary.get(key)
    )
    parts = [f"{summary.get('nodes', 0)} nodes" + (f" ({states})" if states else "")]
    parts.append(f"{summary.get('gpus_in_use', 0)}/{summary.get('gpus', 0)} GPUs in use")
    for key, word in (("foreign_gpus", "foreign"), ("flagged_gpus", "flagged")):
        if summary.get(key):
            parts.append(f"{summary[key]} {word}")
    return " · ".join(parts)


def node_state_text(node: Payload) -> Text:
    """``online`` (green), ``offline for 3m`` (red), ``unmanaged (no agent)`` (yellow)."""
    state = capped(node.get("state") or "unknown")
    style = STATE_STYLE.get(state, "")
    if state == "offline":
        age = node.get("last_seen_age_s")
        return Text("offline" + (f" for {age_text(age)}" if age is not None else ""), style=style)
    if state == "unmanaged":
        return Text("unmanaged (no agent)", style=style)
    return Text(state, style=style)


def sched_text(node: Payload) -> Text:
    """``  drained: disk swap`` (ADR 0020): the server's sinfo-like state word when it says
    more than liveness does (a drain), with its reason; nothing otherwise."""
    state = node.get("sched_state")
    if state not in ("draining", "drained"):
        return Text()
    reason = node.get("reason")
    text = f"  {capped(state)}" + (f": {capped(reason)}" if reason else "")
    return Text(text, style="bold yellow")


def node_header(node: Payload) -> Text:
    """``gpu-01  online  gpu-01.lab  2s ago  nvml``: who, how, when last heard."""
    line = Text()
    line.append(capped(node.get("id") or "?"), style="bold")
    name = node.get("name")
    if name and name != node.get("id"):
        line.append(f" ({capped(name)})")
    line.append("  ").append_text(node_state_text(node))
    line.append_text(sched_text(node))
    if node.get("hostname"):
        line.append(f"  {capped(node['hostname'])}")
    if node.get("state") == "online" and node.get("last_seen_age_s") is not None:
        line.append(f"  {age_text(node['last_seen_age_s'])} ago", style="dim")
    agent = node.get("agent")
    if isinstance(agent, Mapping) and agent.get("reader"):
        line.append(f"  {capped(agent['reader'])}", style="dim")
    if node.get("read_error"):
        line.append(
            f"  read error: {terminal_text(node['read_error'], MESSAGE_LIMIT)}", style="red"
        )
    return line


def gpu_line(gpu: Payload, now: datetime, model_width: int, processes: bool) -> Text:
    """``[0] model | 61°C,  97 % ██████████, 40000 / 81559 MB, 402 W | holder | processes``."""
    util = gpu.get("utilization_pct")
    line = Text(f"  [{capped(gpu.get('index', '?'))}] ")
    line.append(model_of(gpu).ljust(model_width), style="cyan")
    line.append(" | ")
    temp = gpu.get("temperature_c")
    line.append(
        number(temp, "°C"), style="red" if isinstance(temp, int | float) and temp >= 80 else ""
    )
    line.append(", ")
    line.append(f"{number(util, ' %'):>5} ", style=level_style(percent_of(util, 100)))
    line.append_text(bar(percent_of(util, 100)))
    line.append(", ")
    memory = percent_of(gpu.get("memory_used_mb"), memory_total(gpu))
    line.append(memory_text(gpu), style=level_style(memory) if memory is not None else "")
    line.append(f", {number(gpu.get('power_w'), ' W')}")
    mig = gpu.get("mig") or []
    if mig:
        line.append(f", MIG×{len(mig)}", style="dim")
    line.append(" | ")
    line.append(
        holder_text(gpu.get("holder"), now) or "free", style="" if gpu.get("holder") else "dim"
    )
    for text, style in flag_labels(gpu):
        line.append(" ").append(text, style=style)
    shown = (gpu.get("processes") or []) if processes else []
    if shown:
        line.append(" | ")
        for position, process in enumerate(shown):
            if position:
                line.append(" ")
            line.append_text(process_text(process))
    return line


def node_block(node: Payload, now: datetime, processes: bool = True) -> Text:
    """The header line and one line per GPU; the whole block dim unless the node is online."""
    gpus = [gpu for gpu in node.get("gpus") or [] if isinstance(gpu, Mapping)]
    width = max((len(model_of(gpu)) for gpu in gpus), default=0)
    block = node_header(node)
    for gpu in gpus:
        block.append("\n").append_text(gpu_line(gpu, now, width, processes))
    if not gpus:
        block.append("\n  (no GPUs)", style="dim")
    if node.get("state") in ("offline", "unmanaged"):
        block.stylize("dim")
    return block


def cluster_view(payload: Payload, now: datetime, processes: bool = True) -> RenderableType:
    """Every node block, then the cluster summary line (when the server sent one)."""
    nodes = [node for node in payload.get("nodes") or [] if isinstance(node, Mapping)]
    if not nodes:
        return Text(EMPTY_CLUSTER)
    parts: list[RenderableType] = [node_block(node, now, processes) for node in nodes]
    summary = summary_text(payload.get("summary"))
    if summary:
        parts.append(Text(summary, style="bold"))
    return Group(*parts)
