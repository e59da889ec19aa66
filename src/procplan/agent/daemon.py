"""The node agent's shell: performs the actions of ``AgentMachine`` (ADR 0006 §8).

One asyncio loop owns the machine, the launcher and the log shipper. Blocking work (GPU
reads, HTTP calls, file reads) runs on short-lived daemon threads that hand their outcome back
as a machine event, so a stop never waits for a long poll in flight. The loop sleeps until the
machine's next deadline (or, while jobs run, until the next exit check): an idle agent costs
next to nothing.

``run_agent(config, stop_event)`` is the blocking entry point of ``procplan agent`` and of the
server's embedded agent (which runs it in a thread and sets ``stop_event`` to stop it). A
graceful stop leaves the jobs running: a restarted agent adopts them (``--demo``'s embedded
agents, ``stop_jobs_on_exit``, end theirs instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import procplan
from procplan.agent import host
from procplan.agent import messages as m
from procplan.agent.host import AgentConfig as AgentConfig  # re-exported: embedded, cli
from procplan.agent.host import build_reader as build_reader  # re-exported: embedded
from procplan.agent.launcher import JobProcess, Launcher, LaunchError
from procplan.agent.logsend import LogSender
from procplan.agent.logship import LogShipper
from procplan.agent.machine import AgentMachine
from procplan.agent.protocol import ExitedEvent, JobEvent, Key, parse_specs
from procplan.client import ApiError, ClientError, current_user
from procplan.client.agent import AgentClient
from procplan.core.model import GpuDevice
from procplan.core.readings import GpuReader, GpuReadError

log = logging.getLogger("procplan.agent")

MIN_POLL_GAP_S = 0.05  # a server that answers every poll at once cannot make us spin
EXIT_CHECK_S = 0.5  # how often running jobs are reaped
IDLE_MAX_S = 60.0
MIN_SLEEP_S = 0.01
STOP_REPORT_S = 5.0  # a stopping agent tries this long to report exits it still holds
SHIP_ROUNDS = 8  # chunks per stream per heartbeat (8 × 256 KiB)
FINAL_SHIP_ROUNDS = 64


# -- the shell ------------------------------------------------------------------------------


class AgentDaemon:
    """Runs one ``AgentMachine`` against a server; ``run()`` returns the exit code."""

    def __init__(
        self,
        config: AgentConfig,
        reader: GpuReader,
        reader_name: str,
        launcher: Launcher,
        shipper: LogShipper | None = None,
    ) -> None:
        self.config = config
        self.reader, self.reader_name = reader, reader_name
        self.launcher = launcher
        self.shipper = shipper or LogShipper()
        verify = config.tls if config.tls is not None else True
        self.client = AgentClient(config.server_url, config.token, verify=verify)
        self.poll_client = AgentClient(config.server_url, config.token, verify=verify)
        self.logs = LogSender(self.client, config.node_id, self.shipper)
        self.machine = AgentMachine(config.interval_s)
        self.own_processes = host.OwnProcesses()  # which GPU processes are our jobs'
        self.address = config.address or host.local_address(config.server_url)
        self.exit_code = 0
        self._devices: list[GpuDevice] | None = None
        self._last_poll = 0.0
        self._unreachable = False
        self._stopping = False
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[m.Event | None] = asyncio.Queue()
        self._performers: dict[type, Callable[[Any], None]] = {
            m.Register: self._do_register, m.Heartbeat: self._do_heartbeat, m.Poll: self._do_poll,
            m.Launch: self._do_launch, m.Signal: self._do_signal, m.Report: self._do_report,
            m.ShipLogs: self._do_ship, m.Forget: self._do_forget, m.Fatal: self._do_fatal,
        }  # fmt: skip

    # -- the loop ----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop gracefully (thread-safe): jobs keep running."""
        self._stop_requested = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        log.info("agent for node %s: server %s, GPU reader %s, state in %s", self.config.node_id,
                 self.config.server_url, self.reader_name, self.launcher.state_dir)  # fmt: skip
        for record in self.launcher.adoptable():
            log.info("adopted job %s run %s (pid %s)", record.job_id, record.run, record.pid)
            self._track(record)
            self._handle(m.Adopted(time.time(), record.key, record.pid, record.started_at))
        self._handle(m.Start(time.time()))
        if self._stop_requested:
            self._dispatch(None)
        while not self._stopping:
            try:
                event = await asyncio.wait_for(self._queue.get(), self._sleep_for(time.time()))
            except TimeoutError:
                event = None
            else:
                self._dispatch(event)
                while not self._queue.empty() and not self._stopping:
                    self._dispatch(self._queue.get_nowait())
            if self._stopping:
                break
            now = time.time()
            for key, code, signum in self.launcher.poll_exits():
                self._log_exit(key, code, signum)
                self._handle(m.Exited(now, key, code, signum))
            self._handle(m.Tick(now))
        await self._shutdown()
        return self.exit_code

    def _dispatch(self, event: m.Event | None) -> None:
        if event is None:
            log.info("stopping; %s", "ending the jobs started here" if self.config.stop_jobs_on_exit
                     else "running jobs keep running and are adopted on restart")  # fmt: skip
            self._stopping = True
        else:
            self._handle(event)

    def _sleep_for(self, now: float) -> float:
        wake = self.machine.next_wakeup()
        if self.launcher.running():
            wake = min(wake if wake is not None else now + EXIT_CHECK_S, now + EXIT_CHECK_S)
        if wake is None:
            return IDLE_MAX_S
        return min(max(wake - now, MIN_SLEEP_S), IDLE_MAX_S)

    def _handle(self, event: m.Event) -> None:
        for action in self.machine.handle(event):
            self._performers[type(action)](action)

    def _post(self, event: m.Event) -> None:
        """Hand an event to the loop (from any thread)."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._queue.put_nowait, event)

    def _spawn(
        self, name: str, work: Callable[[], m.Event], on_error: Callable[[str], m.Event]
    ) -> None:
        """Run ``work`` on a daemon thread and hand its event to the loop; an unexpected
        exception becomes ``on_error``'s event, so the machine never waits forever."""

        def target() -> None:
            try:
                event = work()
            except Exception as exc:
                log.exception("agent %s failed", name)
                event = on_error(f"internal error: {exc!r}")
            self._post(event)

        threading.Thread(target=target, name=f"procplan-agent-{name}", daemon=True).start()

    async def _shutdown(self) -> None:
        if self.config.stop_jobs_on_exit:
            await asyncio.to_thread(self.launcher.stop_all)
        session, events = self.machine.session, self.machine.pending_events
        if session is not None and events and self.exit_code == 0:
            done = asyncio.get_running_loop().create_future()

            def report() -> None:
                event = self._report_call(session, events)
                if self._loop is not None and not done.done():
                    with contextlib.suppress(RuntimeError):
                        self._loop.call_soon_threadsafe(_settle, done, event)

            threading.Thread(target=report, name="procplan-agent-final", daemon=True).start()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done, STOP_REPORT_S)
        self._loop = None
        for closing in (self.client.close, self.poll_client.close, self.reader.close):
            with contextlib.suppress(Exception):
                closing()

    # -- performing actions ------------------------------------------------------------------

    def _network_ok(self) -> None:
        if self._unreachable:
            self._unreachable = False
            log.info("server %s reachable again", self.config.server_url)

    def _network_failed(self, what: str, exc: ClientError) -> None:
        if self._stopping:  # a call cut short by our own stop (its client is closed)
            return
        if not self._unreachable:
            self._unreachable = True
            log.warning("%s failed: %s (retrying; jobs keep running)", what, exc)
        else:
            log.debug("%s failed: %s", what, exc)

    def _do_register(self, action: m.Register) -> None:
        def failed(message: str) -> m.Event:
            return m.RegisterFailed(time.time(), None, None, message)

        self._spawn("register", self._register_call, failed)

    def _register_call(self) -> m.Event:
        try:
            devices = self._discover()
        except GpuReadError as exc:
            log.warning("GPU discovery failed: %s (retrying)", exc)
            return m.RegisterFailed(time.time(), None, None, f"GPU discovery failed: {exc}")
        body = self._register_body(devices)
        try:
            answer = self.client.agent_register(body)
        except ApiError as exc:
            log.warning("registration refused: %s", exc)
            return m.RegisterFailed(time.time(), exc.status, exc.code, exc.message)
        except ClientError as exc:
            self._network_failed("registration", exc)
            return m.RegisterFailed(time.time(), None, None, str(exc))
        session = answer.get("session")
        if not isinstance(session, str) or not session:
            return m.RegisterFailed(time.time(), None, None, "the register answer has no session")
        self._network_ok()
        for warning in answer.get("warnings") or ():
            log.warning("server: %s", warning)
        interval = _number(answer.get("interval_s")) or self.config.interval_s
        log.info("registered node %s with %d GPU(s); heartbeat every %gs",
                 self.config.node_id, len(devices), interval)  # fmt: skip
        return m.Registered(time.time(), session, interval, _number(answer.get("server_time")))

    def _discover(self) -> list[GpuDevice]:
        if self._devices is None:
            self._devices = self.reader.devices()
        return self._devices

    def _register_body(self, devices: list[GpuDevice]) -> dict[str, Any]:
        try:
            migs = [r for r in self.reader.readings() if r.mig]
        except (GpuReadError, Exception):
            migs = []
        return {
            "node_id": self.config.node_id, "hostname": socket.gethostname(),
            "address": self.address, "agent_version": procplan.__version__,
            "interval_s": self.config.interval_s, "os_user": current_user(), "pid": os.getpid(),
            "reader": self.reader_name,
            "devices": [
                {"index": d.index, "uuid": d.uuid, "name": d.name, "memory_mb": d.memory_mb,
                 "mig": [r.uuid for r in migs if r.index == d.index]}
                for d in devices
            ],
        }  # fmt: skip

    def _do_heartbeat(self, action: m.Heartbeat) -> None:
        sessions, ending = self.launcher.sessions(), self.machine.ending

        def work() -> m.Event:
            body = self._heartbeat_body(action, sessions, ending)
            try:
                self.client.agent_heartbeat(self.config.node_id, body)
            except ApiError as exc:
                log.warning("heartbeat refused: %s", exc)
                return m.HeartbeatFailed(time.time(), action.session, exc.status, exc.code,
                                         exc.message)  # fmt: skip
            except ClientError as exc:
                self._network_failed("heartbeat", exc)
                return m.HeartbeatFailed(time.time(), action.session, None, None, str(exc))
            self._network_ok()
            return m.HeartbeatDone(time.time(), action.session)

        def failed(message: str) -> m.Event:
            return m.HeartbeatFailed(time.time(), action.session, None, None, message)

        self._spawn("heartbeat", work, failed)

    def _heartbeat_body(
        self, action: m.Heartbeat, sessions: Mapping[int, Key], ending: tuple[Key, ...] = ()
    ) -> dict[str, Any]:
        read_error = None
        try:
            readings = self.reader.readings()
            processes = self.reader.processes()
        except Exception as exc:  # a reader must never take the node offline
            readings, processes, read_error = [], [], str(exc) or type(exc).__name__
        return {
            "session": action.session,
            "readings": [dataclasses.asdict(r) for r in readings],
            "processes": self.own_processes.rows(processes, sessions, action.jobs, ending),
            "jobs": [{"id": j.id, "run": j.run, "pid": j.pid} for j in action.jobs],
            "read_error": read_error,
        }

    def _do_poll(self, action: m.Poll) -> None:
        def work() -> m.Event:
            gap = self._last_poll + MIN_POLL_GAP_S - time.monotonic()
            if gap > 0:
                time.sleep(gap)
            self._last_poll = time.monotonic()
            node, wait = self.config.node_id, self.config.poll_wait_s
            try:
                answer = self.poll_client.agent_jobs(node, action.session, action.version, wait)
            except ApiError as exc:
                log.warning("job poll refused: %s", exc)
                return m.PollFailed(time.time(), action.session, exc.status, exc.code, exc.message)
            except ClientError as exc:
                self._network_failed("job poll", exc)
                return m.PollFailed(time.time(), action.session, None, None, str(exc))
            version = answer.get("version")
            return m.PollResult(time.time(), action.session,
                                None if version is None else str(version),
                                parse_specs(answer.get("jobs"), log))  # fmt: skip

        def failed(message: str) -> m.Event:
            return m.PollFailed(time.time(), action.session, None, None, message)

        self._spawn("poll", work, failed)

    def _do_launch(self, action: m.Launch) -> None:
        spec = action.spec
        try:
            pid = self.launcher.launch(spec)
        except LaunchError as exc:
            log.warning("job %s run %s cannot start: %s", spec.id, spec.run, exc)
            self._post(m.LaunchFailed(time.time(), spec.key, str(exc)))
            return
        except Exception as exc:
            log.exception("job %s run %s: launch failed", spec.id, spec.run)
            self._post(m.LaunchFailed(time.time(), spec.key, f"internal error: {exc!r}"))
            return
        record = self.launcher.record(spec.key)
        if record is not None:
            self._track(record)
        log.info("started job %s run %s as %s (pid %s)", spec.id, spec.run, spec.user, pid)
        self._post(m.Launched(time.time(), spec.key, pid))

    def _track(self, record: JobProcess) -> None:
        """Ship the run's log files from where its output begins, as its node's rank."""
        starts = (record.stdout_start, record.stderr_start)
        stderr = record.stderr or record.stdout
        self.shipper.track(record.key, record.stdout, stderr, record.rank, starts)

    def _do_signal(self, action: m.Signal) -> None:
        name = signal.Signals(action.signum).name
        sent = self.launcher.signal(action.key, action.signum)
        log.info("job %s run %s: %s %s (%s)", action.key[0], action.key[1],
                 "sent" if sent else "already gone, not sent", name, action.reason)  # fmt: skip

    def _do_report(self, action: m.Report) -> None:
        def failed(message: str) -> m.Event:
            return m.EventsFailed(time.time(), action.session, None, None, message)

        self._spawn("events", lambda: self._report_call(action.session, action.events), failed)

    def _report_call(self, session: str, events: tuple[JobEvent, ...]) -> m.Event:
        exited = [(e.job_id, e.run) for e in events if isinstance(e, ExitedEvent)]
        if exited:  # the job's last words reach the server before its end does
            self.logs.ship(session, exited, FINAL_SHIP_ROUNDS)
        try:
            self.client.agent_events(self.config.node_id, session, [e.wire() for e in events])
        except ApiError as exc:
            log.warning("job events refused: %s", exc)
            return m.EventsFailed(time.time(), session, exc.status, exc.code, exc.message)
        except ClientError as exc:
            self._network_failed("job events", exc)
            return m.EventsFailed(time.time(), session, None, None, str(exc))
        return m.EventsAcked(time.time(), events)

    def _do_ship(self, action: m.ShipLogs) -> None:
        if self.logs.busy:
            return  # the previous round is still going

        def work() -> None:
            self.logs.ship(action.session, None, SHIP_ROUNDS)

        threading.Thread(target=work, name="procplan-agent-logs", daemon=True).start()

    def _do_forget(self, action: m.Forget) -> None:
        self.launcher.forget(action.key)
        self.shipper.forget(action.key)

    def _do_fatal(self, action: m.Fatal) -> None:
        log.error("%s", action.message)
        self.exit_code = 1
        self._stopping = True

    @staticmethod
    def _log_exit(key: Key, code: int | None, signum: int | None) -> None:
        status = (f"exit code {code}" if code is not None
                  else f"signal {signum}" if signum is not None else "unknown status")  # fmt: skip
        log.info("job %s run %s ended (%s)", key[0], key[1], status)


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


# -- entry point ----------------------------------------------------------------------------


def create_daemon(config: AgentConfig, reader: GpuReader | None = None,
                  reader_name: str | None = None) -> AgentDaemon:  # fmt: skip
    """Build the daemon of ``config`` (``reader`` replaces the configured one)."""
    if reader is None:
        reader, reader_name = build_reader(config.reader, config.fake_gpus, config.node_id)
    state_dir = config.state_dir or host.default_state_dir(config.node_id)
    launcher = Launcher(state_dir, current_user(), allow_root_jobs=config.allow_root_jobs)
    return AgentDaemon(config, reader, reader_name or "custom", launcher)


def run_agent(
    config: AgentConfig,
    stop_event: threading.Event | None = None,
    *,
    reader: GpuReader | None = None,
    reader_name: str | None = None,
) -> int:
    """Run the agent until ``stop_event`` is set (or, in the main thread, SIGTERM/SIGINT);
    returns the exit code: 0 after a graceful stop, 1 when the server refuses the token or
    the agent cannot start."""
    try:
        daemon = create_daemon(config, reader, reader_name)
    except (OSError, ValueError) as exc:
        log.error("the agent cannot start: %s", exc)
        return 1
    return asyncio.run(_main(daemon, stop_event))


async def _main(daemon: AgentDaemon, stop_event: threading.Event | None) -> int:
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, daemon.request_stop)
    finished = threading.Event()
    if stop_event is not None:

        def watch() -> None:
            while not finished.is_set():
                if stop_event.wait(1.0):
                    daemon.request_stop()
                    return

        threading.Thread(target=watch, name="procplan-agent-stop", daemon=True).start()
    try:
        return await daemon.run()
    finally:
        finished.set()
