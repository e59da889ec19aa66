"""Watch commands of ``procplan``: ``nodes`` (a gpustat-like view), ``logs`` and ``top``.

``nodes`` renders ``GET /api/v1/nodes`` as sent (ADR 0006): states, flags and process kinds are
the server's classification, never recomputed here. The small pure formatters (bars, numbers,
holders, flags, ages) are shared with the ``top`` dashboard (``procplan.tui.top``); they cap
and sanitise each server value (``procplan.present``) and build ``Text``, never Rich markup.
``logs`` writes a job's output through ``present.LogFilter``: colours kept, every other escape
sequence and control character dropped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from procplan.cli.common import (
    AsOption,
    UrlOption,
    connect,
    console,
    usage_error,
    utc_now,
    warn,
)
from procplan.client import LOG_PAGE, ClientError, ProcPlanClient, resolve_url
from procplan.client.auth import resolve_act_as
from procplan.present import MESSAGE_LIMIT, LogFilter, terminal_text
from procplan.present.gpus import ACTIVE_STATES, cluster_view

Payload = Mapping[str, Any]

FOLLOW_POLL_S = 1.0


# -- procplan nodes ---------------------------------------------------------------------------


def _fetch(client: ProcPlanClient, node_id: str | None) -> dict[str, Any]:
    """``/api/v1/nodes``, or one node wrapped in the same shape (without a summary)."""
    if node_id is None:
        return client.nodes.list()
    return {"nodes": [client.nodes.get(node_id)]}


def _watch(
    client: ProcPlanClient, node_id: str | None, every: float, processes: bool, first: Payload
) -> None:
    """Redraw in place every ``every`` seconds; failures show on top of the last view."""
    out = console()
    view = cluster_view(first, utc_now(), processes)
    try:
        with Live(view, console=out, auto_refresh=False) as live:
            while True:
                time.sleep(every)
                try:
                    view = cluster_view(_fetch(client, node_id), utc_now(), processes)
                    live.update(view, refresh=True)
                except ClientError as exc:
                    message = terminal_text(exc, MESSAGE_LIMIT)
                    note = Text(f"{message} (retrying every {every:g}s)", style="red")
                    live.update(Group(note, view), refresh=True)
    except KeyboardInterrupt:
        return


def nodes(
    node: Annotated[str | None, typer.Option("--node", help="Only this node id")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON")] = False,
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch", "-w", min=0.1, metavar="SECONDS", help="Redraw every SECONDS (Ctrl-C ends)"
        ),
    ] = None,
    no_processes: Annotated[
        bool, typer.Option("--no-processes", help="Leave out the GPU processes")
    ] = False,
    url: UrlOption = None,
) -> None:
    """GPUs of every node like gpustat: load, memory, holder, processes and flags."""
    if as_json and watch is not None:
        usage_error("give either --json or --watch, not both", "--json / --watch")
    with connect(url, raw=as_json) as client:
        payload = _fetch(client, node)
        if as_json:
            typer.echo(json.dumps(payload["nodes"][0] if node else payload, indent=2))
            return
        if watch is not None:
            _watch(client, node, watch, not no_processes, payload)
            return
    console().print(cluster_view(payload, utc_now(), not no_processes))


# -- procplan logs ----------------------------------------------------------------------------


def _write(data: bytes) -> None:
    """Bytes to stdout as given (the job's encoding is not ours to guess)."""
    if not data:
        return
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode(errors="replace"))
    else:
        buffer.write(data)
        buffer.flush()


def _drain(
    client: ProcPlanClient,
    log: LogFilter,
    job_ident: str,
    stream: str,
    run: int | None,
    offset: int,
    rank: int = 0,
) -> tuple[int, int, bool, str | None]:
    """Write every stored byte from ``offset``, page by page, through the terminal filter
    ``log``; the new offset, the size the server reported, whether it truncated, and the job
    state of the last page."""
    while True:
        data, size, truncated, state = client.jobs.logs(
            job_ident, stream, offset, LOG_PAGE, run, rank
        )
        if size < offset:
            warn(f"note: the {stream} log restarted (a new run); reading it from the start")
            _write(log.finish())
            offset = 0
            continue
        if data:
            _write(log.feed(data))
            offset += len(data)
        if not data or offset >= size:
            return offset, size, truncated, state


def logs(
    job_ident: Annotated[str, typer.Argument(help="Job id (as listed by 'procplan queue')")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new output until the job ends")
    ] = False,
    stderr: Annotated[bool, typer.Option("--stderr", help="The job's stderr stream")] = False,
    run: Annotated[
        int | None,
        typer.Option("--run", min=0, help="Only this run of a requeued job (0 = first)"),
    ] = None,
    rank: Annotated[
        int, typer.Option("--rank", min=0, help="The node of a multi-node job (0 = first)")
    ] = 0,
    url: UrlOption = None,
) -> None:
    """Print a batch job's output as the server stored it (-f follows it like tail -f):
    every run of a requeued job in order, each after a separator line; one log per node
    of a multi-node job (--rank).

    Colours stay; every other escape sequence and control character but tab, newline and
    carriage return is dropped (``present.LogFilter``): the output is another user's text.
    """
    stream = "stderr" if stderr else "stdout"
    offset, truncated, state = 0, False, None
    log = LogFilter()
    with connect(url) as client:
        try:
            while True:
                before = offset
                offset, _size, truncated, state = _drain(
                    client, log, job_ident, stream, run, offset, rank
                )
                if not follow or (state not in ACTIVE_STATES and offset == before):
                    break
                time.sleep(FOLLOW_POLL_S)
        except KeyboardInterrupt:
            return
        finally:
            _write(log.finish())
    if truncated:
        warn(
            f"note: the {stream} log of job {job_ident} was truncated: the server keeps only "
            "the first part of a large log (the full file is in the job's working directory)"
        )
    elif offset == 0 and not follow:
        warn(f"job {job_ident} ({state or 'state unknown'}): no {stream} stored")


# -- procplan top -----------------------------------------------------------------------------


def top(
    refresh: Annotated[
        float, typer.Option("--refresh", min=0.2, metavar="SECONDS", help="Refresh interval")
    ] = 2.0,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """A live dashboard: GPUs, queue, running jobs and today's bookings. Keys: s sort,
    / filter, Enter a GPU's processes, c cancel your job, f flagged only, q quit."""
    from procplan.tui.top import run_top  # Textual loads only for this command

    run_top(resolve_url(url), refresh, resolve_act_as(act_as))
