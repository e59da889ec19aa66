"""``procplan run``: wait for GPUs, run a command on them, give them back when it ends.

The job is ``interactive``: this process is its client. It submits, long-polls the job
(``/wait`` returns as soon as anything about the job changes, and renews the lease) while one
status line shows position, reason and estimated start; then ``supervise`` runs the command
with ``CUDA_VISIBLE_DEVICES`` set, heartbeats the lease, releases the job with the command's
exit code, and ``procplan run`` exits with that code, as a shell would.
"""

from __future__ import annotations

import os
import signal
import socket
from contextlib import AbstractContextManager
from types import FrameType

import typer
from rich.console import Console
from rich.status import Status
from rich.text import Text

from procplan.cli.common import AsOption, UrlOption, connect, fail, utc_now
from procplan.cli.jobs import (
    BookingOpt,
    CommandArg,
    GpuMemOpt,
    GpusOpt,
    GpuTypeOpt,
    NameOpt,
    NodeOpt,
    NodesOpt,
    PriorityOpt,
    ReleaseBookingOpt,
    Resources,
    TenantOpt,
    TimeOpt,
)
from procplan.cli.jobview import status_line
from procplan.cli.supervise import FORWARDED, handling, heartbeat_interval, say, supervise
from procplan.client import ApiError, ClientError, Job, ProcPlanClient
from procplan.present import MESSAGE_LIMIT, terminal_text

WAIT_TIMEOUT_S = 25.0  # one long poll; well under the 30 s lease that each wait renews


def pick_node(node_ids: list[str], host: str) -> str | None:
    """This host's node id: its name, or its short name (``gpu1`` for ``gpu1.lab.org``)."""
    for candidate in (host, host.split(".")[0]):
        if candidate in node_ids:
            return candidate
    return None


# -- waiting -------------------------------------------------------------------------------------


class Interrupted(Exception):
    """SIGTERM or SIGHUP while waiting: withdraw the job like Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class StatusDisplay:
    """One status line on stderr: a Rich spinner line on a terminal, else a plain line each
    time the text changes (logs of non-interactive runs stay short)."""

    def __init__(self) -> None:
        self._console = Console(stderr=True, highlight=False)
        self._status: Status | None = None
        self._last = ""

    def __enter__(self) -> StatusDisplay:
        if self._console.is_terminal:
            self._status = self._console.status("submitting")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def show(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        if self._status is not None:  # a Text: the server's reason is never Rich markup
            self._status.update(Text(terminal_text(text, MESSAGE_LIMIT)))
        else:
            say(text)


def _withdraw_on_signals() -> AbstractContextManager[None]:
    """While waiting, SIGTERM/SIGHUP raise ``Interrupted`` (SIGINT already raises)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    return handling([s for s in FORWARDED if s != signal.SIGINT], handler)


def withdraw(client: ProcPlanClient, ident: str) -> None:
    """Cancel a job we no longer wait for; if that fails, its lease lapses on its own."""
    try:
        client.jobs.cancel(ident)
    except ApiError as exc:
        say(f"job {ident}: {exc.message}")
    except ClientError:
        say(f"could not withdraw job {ident}; the server drops it when its lease lapses")
    else:
        say(f"withdrew job {ident}")


def wait_for_start(client: ProcPlanClient, job: Job) -> Job:
    """Long-poll until the job leaves ``pending``; on Ctrl-C/SIGTERM/SIGHUP withdraw it and
    exit 128 + signal. A job that ends without running exits 1 with the server's words."""
    ident = job.id
    try:
        with _withdraw_on_signals(), StatusDisplay() as display:
            while job.state == "pending":
                display.show(status_line(job, utc_now()))
                job = client.jobs.wait(ident, job.version, WAIT_TIMEOUT_S)
    except KeyboardInterrupt:
        withdraw(client, ident)
        raise typer.Exit(128 + signal.SIGINT) from None
    except Interrupted as exc:
        withdraw(client, ident)
        raise typer.Exit(128 + exc.signum) from None
    if job.state != "running":
        detail = job.message or job.reason_text or ""
        fail(f"procplan: job {ident} {job.state}" + (f": {detail}" if detail else ""))
    return job


def default_node(client: ProcPlanClient, nodes: int) -> str | None:
    """Pin to this host when it is a node, since the command runs here; say so when not."""
    if nodes > 1:
        return None
    host = socket.gethostname()
    listed = client.nodes.list().get("nodes") or []
    node = pick_node([str(n.get("id")) for n in listed if isinstance(n, dict)], host)
    if node is None:
        say(
            f"note: this host ({host}) is not a node of the cluster, so the job is not pinned "
            "and its GPUs may be on another machine (use --node ID to choose)"
        )
    return node


def run(
    command: CommandArg,
    gpus: GpusOpt = 1,
    gpu_type: GpuTypeOpt = None,
    gpu_mem: GpuMemOpt = None,
    time_limit: TimeOpt = None,
    priority: PriorityOpt = None,
    tenant: TenantOpt = None,
    booking: BookingOpt = None,
    release_booking: ReleaseBookingOpt = False,
    nodes: NodesOpt = 1,
    node: NodeOpt = None,
    name: NameOpt = None,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Wait for GPUs, run CMD with CUDA_VISIBLE_DEVICES set, release them when it exits."""
    resources = Resources.parse(
        time=time_limit, priority=priority, gpus=gpus, gpu_type=gpu_type, gpu_mem=gpu_mem,
        tenant=tenant, booking=booking, release_booking=release_booking, nodes=nodes,
        node=node, name=name,
    )  # fmt: skip
    with connect(url, act_as=act_as) as client:
        pin = node or default_node(client, nodes)
        body = {
            **resources.body("interactive", command),
            "node_id": pin,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "workdir": os.getcwd(),
        }
        job = client.jobs.submit({k: v for k, v in body.items() if v is not None}).job
        interval = heartbeat_interval(job)
        job = wait_for_start(client, job)
        say(status_line(job, utc_now()))
        code = supervise(client, job, command, interval)
    raise typer.Exit(code)
