"""``procplan run``: wait for GPUs, run a command on them, give them back when it ends.

The job is ``interactive``: this process is its client. It submits, long-polls the job
(``/wait`` returns as soon as anything about the job changes, and renews the lease) while one
status line shows position, reason and estimated start; then ``supervise`` runs the command
with ``CUDA_VISIBLE_DEVICES`` set, heartbeats the lease, releases the job with the command's
exit code, and ``procplan run`` exits with that code, as a shell would.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
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
from procplan.cli.supervise import (
    FORWARDED,
    handling,
    heartbeat_interval,
    lease_ttl,
    say,
    supervise,
)
from procplan.client import ApiError, ClientError, Job, ProcPlanClient, ServerUnreachable
from procplan.present import MESSAGE_LIMIT, terminal_text

WAIT_TIMEOUT_S = 25.0  # one long poll; well under the 30 s lease that each wait renews
WAKE_S = 1.0
"""How often the main thread wakes while a poll is out: a signal wakes it at once when the
kernel hands it to the main thread, as it does unless another thread happens to take it;
Python then runs its handler only at the main thread's next Python step."""
RETRY_S = (0.5, 1.0, 2.0)
"""Pauses before polling again after the server could not be reached (then the last, again):
short, because another server of the list may take over within seconds (ADR 0021)."""
PROXY_DOWN = (502, 503, 504)  # what a proxy in front of a failing server answers meanwhile


def pick_node(node_ids: list[str], host: str) -> str | None:
    """This host's node id: its name, or its short name (``gpu1`` for ``gpu1.lab.org``)."""
    for candidate in (host, host.split(".")[0]):
        if candidate in node_ids:
            return candidate
    return None


# -- waiting -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signalled:
    """SIGINT, SIGTERM or SIGHUP came while we waited: withdraw the job."""

    signum: int


def start_deaf(thread: threading.Thread) -> None:
    """Start ``thread`` with our signals blocked in it, so the kernel delivers them to the
    main thread (a signal taken by the poll thread would only restart its socket read, and
    the main thread would sleep on until the poll answers)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        thread.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        thread.start()  # the thread inherits the blocked mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Inbox:
    """Where long-poll answers and signals meet, so that a signal never raises into httpx.

    A handler that raises (``KeyboardInterrupt``, or an exception of ours) fires between any
    two bytecodes of the main thread, also inside httpcore right after its connection pool
    took its lock and before the ``with`` that gives it back. The pool then stays locked,
    and the withdrawal's request, or closing the client, waits on that lock forever. So from
    before submission until the job starts the handlers only post a ``Signalled`` here
    (``SimpleQueue.put`` may be called from a signal handler), each long poll runs in a
    thread that never takes these signals, and the main thread blocks on this queue alone:
    a signal wakes it at once, whatever the poll is doing. Requests the main thread makes
    itself (listing nodes, submitting) finish first, within the client's timeout; their
    signals are acted on right after.
    """

    def __init__(self) -> None:
        self._events: queue.SimpleQueue[Job | Signalled | BaseException] = queue.SimpleQueue()

    def catching(self) -> AbstractContextManager[None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            self._events.put(Signalled(signum))

        return handling(FORWARDED, handler)

    def signalled(self) -> Signalled | None:
        """The first signal posted so far, if any; call it while no poll is in flight."""
        found = None
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return found
            if found is None and isinstance(event, Signalled):
                found = event

    def poll(self, client: ProcPlanClient, ident: str, version: int | None) -> Job | Signalled:
        """One long poll of the job: its answer, or the first signal to come (the poll is
        then abandoned, its thread left to end with the process). Client errors re-raise."""

        def answer() -> None:
            try:
                self._events.put(client.jobs.wait(ident, version, WAIT_TIMEOUT_S))
            except BaseException as exc:  # raised in the main thread, which must not wait on
                self._events.put(exc)

        start_deaf(threading.Thread(target=answer, name=f"procplan-wait-{ident}", daemon=True))
        while True:
            try:
                event = self._events.get(timeout=WAKE_S)
                break
            except queue.Empty:
                continue  # a signal taken by another thread (Rich's) is handled here
        if isinstance(event, BaseException):
            raise event
        return event

    def pause(self, seconds: float) -> Signalled | None:
        """Sleep ``seconds`` unless a signal comes first (then return it); no poll is out."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._events.get(timeout=min(left, WAKE_S))
            except queue.Empty:
                continue
            if isinstance(event, Signalled):
                return event
        return None


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


def transient(exc: ClientError) -> bool:
    """A failure that may pass while the job waits: no server answered (one is restarting,
    or the leader died and the list's next server takes over), or a proxy says so."""
    return isinstance(exc, ServerUnreachable) or (
        isinstance(exc, ApiError) and exc.status in PROXY_DOWN
    )


def poll_through_outages(client: ProcPlanClient, job: Job, inbox: Inbox) -> Job | Signalled:
    """One long poll; transient failures are retried after a short pause for as long as the
    job's lease would last (each answered poll renews it). Past that the server has ended
    the job anyway, so the last failure is raised."""
    give_up = time.monotonic() + lease_ttl(job)
    failures = 0
    while True:
        try:
            return inbox.poll(client, job.id, job.version)
        except ClientError as exc:
            if not transient(exc) or time.monotonic() >= give_up:
                raise
            if failures == 0:
                say(f"lost the server ({exc}); retrying")
            pause = RETRY_S[min(failures, len(RETRY_S) - 1)]
            failures += 1
        caught = inbox.pause(min(pause, max(give_up - time.monotonic(), 0.0)))
        if caught is not None:
            return caught


def wait_for_start(client: ProcPlanClient, job: Job, inbox: Inbox) -> Job:
    """Long-poll until the job leaves ``pending``, through server outages (``poll_through_
    outages``). A signal caught by ``inbox`` withdraws it and exits 128 + signal, also when
    the job started meanwhile (its command has not run). A job that ends without running
    exits 1 with the server's words."""
    ident = job.id
    caught = inbox.signalled()
    with StatusDisplay() as display:
        while caught is None and job.state == "pending":
            display.show(status_line(job, utc_now()))
            event = poll_through_outages(client, job, inbox)
            if isinstance(event, Signalled):
                caught = event
            else:
                job = event
    caught = caught or inbox.signalled()
    if caught is not None:
        withdraw(client, ident)
        raise typer.Exit(128 + caught.signum)
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
    inbox = Inbox()
    with connect(url, act_as=act_as) as client:
        with inbox.catching():  # until the job runs; then ``supervise`` forwards signals
            pin = node or default_node(client, nodes)
            if (early := inbox.signalled()) is not None:  # nothing submitted yet
                raise typer.Exit(128 + early.signum)
            body = {
                **resources.body("interactive", command),
                "node_id": pin,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "workdir": os.getcwd(),
            }
            job = client.jobs.submit({k: v for k, v in body.items() if v is not None}).job
            interval = heartbeat_interval(job)
            job = wait_for_start(client, job, inbox)
        say(status_line(job, utc_now()))
        code = supervise(client, job, command, interval)
    raise typer.Exit(code)
