"""Composition root: settings → database → services → app → uvicorn.

``python -m procplan.server`` behaves like ProcPlan's ``procplan-server`` (same flags).
"""

from __future__ import annotations

import gc
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from fastapi import FastAPI

from procplan.agent.host import quiet_http_logs
from procplan.api.app import create_app
from procplan.api.crosssite import allowed_host_names
from procplan.api.deps import AppContext
from procplan.api.guard import BodyLimits
from procplan.api.identity import IdentityConfig
from procplan.config import Settings
from procplan.core.bookings import BookingLimits
from procplan.core.idle import IdleSettings
from procplan.core.jobs import Policy
from procplan.core.timeutil import DAY, HOUR, MINUTE
from procplan.embedded import demo_cluster, embedded_agents, start_agents
from procplan.handoff import forget_secret_environment, read_handoff, worker_handoff
from procplan.service.accounts import AccountService, AccountSettings
from procplan.service.agent_jobs import AgentJobs
from procplan.service.audit import AuditLog
from procplan.service.bookings import BookingService
from procplan.service.clock import Clock, SystemClock
from procplan.service.cycle import Scheduler
from procplan.service.cycle_ports import ClusterHousekeeping, CycleClock, StoreSnapshots
from procplan.service.events import EventBus
from procplan.service.history import Retention
from procplan.service.idle_reclaim import IdleReclaim
from procplan.service.intrusions import IntrusionWatch
from procplan.service.jobs import JobService, JobSettings
from procplan.service.leases import Housekeeper
from procplan.service.metrics import SchedulerMetrics
from procplan.service.node_state import NodeSettings
from procplan.service.nodes import NodeService
from procplan.service.notify import NoteSender, NotifyService, preemption_warner
from procplan.service.run_as import RunAsPolicy, current_account
from procplan.service.topology_file import read_topology_file
from procplan.service.usage import UsageService
from procplan.service.usage_metrics import UsageCollector
from procplan.service.waiting import JobWaiter
from procplan.store.accounts_repo import AccountStore
from procplan.store.engine import Store, display_url, make_engine
from procplan.store.leader import CycleLock
from procplan.store.logs_repo import LogStore
from procplan.store.migrate import upgrade

LOG = logging.getLogger("procplan.server")


@dataclass(slots=True)
class Composed:
    """The wired-up server, for ``serve`` and for tests that run it in-process.
    ``local_token``: the token of this server's embedded agents (never shown to anyone);
    ``events``: the bus every committed write is published on (``service.events``)."""

    app: FastAPI
    store: Store
    bookings: BookingService
    jobs: JobService
    waiter: JobWaiter
    scheduler: Scheduler
    nodes: NodeService
    metrics: SchedulerMetrics
    local_token: str
    accounts: AccountService
    audit: AuditLog
    events: EventBus
    housekeeper: Housekeeper
    notify: NotifyService
    sender: NoteSender


def limits_from(settings: Settings) -> BookingLimits:
    return BookingLimits(
        max_duration_s=settings.max_booking_days * DAY,
        max_past_s=settings.max_past_minutes * MINUTE,
        max_label_len=settings.max_label_length,
        max_window_s=settings.max_window_days * DAY,
        max_answer_bytes=settings.max_answer_bytes,
    )


def policy_from(settings: Settings) -> Policy:
    return Policy(
        weight_age=settings.weight_age,
        max_age_s=int(settings.max_age_hours * HOUR),
        weight_fairshare=settings.weight_fairshare,
        weight_size=settings.weight_size,
        weight_length=settings.weight_length,
        length_ref_s=int(settings.length_ref_hours * HOUR),
        half_life_s=int(settings.fairshare_half_life_hours * HOUR),
        min_runtime_s=settings.min_runtime_s,
        preempt_grace_s=settings.preempt_grace_s,
        booking_warning_s=settings.booking_warning_s,
        reserve_depth=settings.reserve_depth,
        foreign_gpus_blocked=settings.foreign_gpus_blocked,
        preemption=settings.preemption,
        max_preemptions=settings.max_preemptions,
        thrash_window_s=settings.thrash_window_s,
        drain_after_s=settings.drain_after_s,
        backfill=settings.backfill,
    )


def compose(
    settings: Settings,
    clock: Clock | None = None,
    *,
    prepare_database: bool = True,
    local_token: str | None = None,
) -> Composed:
    """Open the database, build the services and the app; ``prepare_database`` also migrates
    it and syncs the topology source (workers of a multi-process server leave that to their
    parent). ``local_token``: the embedded agents' token (workers get their parent's, so they
    accept its agents; default: a new one). The scheduler is built but not started: ``serve``
    starts it, tests drive it."""
    clock = clock or SystemClock()
    store = Store(
        make_engine(
            settings.resolved_db_url(),
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            synchronous=settings.sqlite_synchronous,
        ),
        busy_timeout_s=settings.sqlite_busy_timeout_ms / 1000,
    )
    events = EventBus()  # the cycle and the waiters subscribe (see service.events)
    bookings = BookingService(store, clock, limits_from(settings), events)
    if prepare_database:
        upgrade(store)
        if settings.config is not None:
            bookings.replace_topology(read_topology_file(settings.config))
        elif settings.demo:
            bookings.replace_topology(demo_cluster(settings.local_node_id))
    job_settings = JobSettings(
        lease_ttl_s=settings.lease_ttl_s,
        local_node=settings.local_node_id,
        local_host=socket.gethostname(),
        policy=policy_from(settings),
    )
    jobs = JobService(store, clock, bookings, job_settings, events)
    waiter = JobWaiter(jobs.get, jobs.version, events=events)
    local_token = local_token or secrets.token_urlsafe(24)
    nodes = NodeService(
        store, clock, bookings, jobs, node_settings_from(settings, local_token), events
    )
    IntrusionWatch(store, clock, nodes, bookings.active_at, settings.notify_poll_s).watch(events)
    agent_jobs = AgentJobs(nodes, jobs, waiter, LogStore(store))
    cycle_lock = CycleLock(store)
    metrics = SchedulerMetrics(jobs, nodes, leading=lambda: cycle_lock.held)
    housekeeper = Housekeeper(
        jobs, clock, pidfd=settings.pid_watch == "pidfd", leading=lambda: cycle_lock.held
    )
    jobs.watch_client = housekeeper.watch
    idle = IdleReclaim(bookings, nodes, clock, idle_settings_from(settings), settings.idle_check_s)
    scheduler = Scheduler(
        StoreSnapshots(jobs, bookings, nodes),
        jobs,
        CycleClock(clock),
        cycle_lock,
        job_settings.policy,
        housekeeping=ClusterHousekeeping(housekeeper, nodes, idle),
        events=events,
        metrics=metrics,
        warn=preemption_warner(store, clock, jobs.find),
        tick_s=settings.cycle_tick_s,
    )
    housekeeper.wake = scheduler.wake_housekeeping  # a watched client exited (ADR 0016)
    usage = UsageService(store, clock, settings.usage_busy_pct)
    notify = NotifyService(store, clock)
    sender = NoteSender(
        store, clock, lambda: cycle_lock.held, bookings.near, poll_s=settings.notify_poll_s,
        lead_s=settings.booking_notice_min * 60,
        describe_job=lambda job_id: usage.job_usage(job_id).efficiency.describe(),
    )  # fmt: skip
    accounts = AccountService(AccountStore(store), clock, account_settings_from(settings))
    audit = AuditLog(AccountStore(store), clock, writes=jobs.write_batcher)
    metrics.registry.register(UsageCollector(usage))
    context = AppContext(
        bookings=bookings,
        config_path=settings.config,
        jobs=jobs,
        waiter=waiter,
        started_at=time.time(),
        port=settings.port,
        accounts=accounts,
        audit=audit,
        run_as=RunAsPolicy(
            switches_users=os.geteuid() == 0 and not settings.demo,
            allow_root_jobs=settings.allow_root_jobs,
            runs_jobs_here=settings.local_agent != "off",
        ),
        nodes=nodes,
        agent_jobs=agent_jobs,
        metrics=metrics,
        notify=notify,
        idle=idle,
        body_limits=BodyLimits(settings.max_body_bytes, settings.max_log_chunk_bytes),
        answer_bytes=settings.max_answer_bytes,
        usage=usage,
    )
    app = create_app(
        context,
        settings.web_root,
        identity_from(settings, accounts),
        allowed_host_names(settings.host, settings.allowed_hosts),
        tuple(settings.allowed_origins),
        served_under=settings.root_path,
    )
    return Composed(
        app, store, bookings, jobs, waiter, scheduler, nodes, metrics, local_token, accounts,
        audit, events, housekeeper, notify, sender,
    )  # fmt: skip


def account_settings_from(settings: Settings) -> AccountSettings:
    return AccountSettings(session_s=settings.session_days * 86400, cache_s=settings.token_cache_s)


def identity_from(settings: Settings, accounts: AccountService) -> IdentityConfig:
    """How requests prove who sent them (ADR 0009)."""
    return IdentityConfig(
        accounts,
        peer_identity=settings.peer_identity,
        proxy_header=settings.auth_proxy_header,
        proxies=tuple(ipaddress.ip_network(net, strict=False) for net in settings.auth_proxies),
        open_compat_writes=settings.compat_writes == "open",
    )


def idle_settings_from(settings: Settings) -> IdleSettings:
    """Idle reclaim's cluster settings (ADR 0013), in seconds."""
    return IdleSettings(
        enabled=settings.idle_reclaim,
        after_s=settings.idle_after_min * MINUTE,
        memory_after_s=settings.idle_memory_after_min * MINUTE,
        util_pct=settings.idle_util_pct,
        memory_mb=settings.idle_memory_mb,
        grace_s=settings.idle_grace_min * MINUTE,
    )


def node_settings_from(settings: Settings, local_token: str) -> NodeSettings:
    return NodeSettings(
        agent_token=settings.agent_token,
        local_tokens=frozenset({local_token}),
        missed_heartbeats=settings.missed_heartbeats,
        requeue_lost=settings.requeue_lost,
        max_requeues=settings.max_requeues,
        idle_booking_minutes=settings.idle_booking_minutes,
        restart_grace_s=settings.restart_grace_s,
        batch_requires_agent=settings.batch_requires_agent,
        retention=Retention(settings.history_minutes_days, settings.history_hours_days),
        log_max_mb=settings.log_max_mb,
    )


# Collect the youngest generation every 50,000 allocations instead of 700: a year-long grid
# allocates tens of thousands of objects that all survive, and the default thresholds spent a
# third of such a request re-scanning them (measured in bench/availability.py).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Freeze start-up objects out of the collector's scans and raise the young threshold."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def worker_payload(settings: Settings, local_token: str) -> str:
    """What ``--workers N`` processes need from their parent: the settings (secrets included)
    and the embedded agents' token. It travels in a private file, never in the environment."""
    return json.dumps({"settings": settings.model_dump(mode="json"), "local_token": local_token})


def worker_app() -> FastAPI:
    """uvicorn factory for ``--workers N``: the parent already migrated and synced."""
    payload = json.loads(read_handoff())
    settings = Settings.model_validate(payload["settings"])
    composed = compose(settings, prepare_database=False, local_token=payload["local_token"])
    composed.bookings.warm_up()
    tune_gc()
    composed.scheduler.start()  # every worker competes for the cycle lock; one wins
    composed.nodes.start_writer()
    composed.audit.start()
    composed.sender.start()
    _before_stop_signals(composed.waiter.close)
    return composed.app


def _before_stop_signals(action: Callable[[], None]) -> None:
    """Run ``action`` on a thread when SIGTERM or SIGINT arrives, then the handler uvicorn has
    installed: a ``--workers`` process wakes its long polls at once, as a single server does
    (``_run_until_signal``). uvicorn loads the app factory after installing its handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        if not callable(previous):
            continue

        def handler(sig: int, frame: FrameType | None, then: Any = previous) -> None:
            threading.Thread(target=action, name="procplan-stop", daemon=True).start()
            then(sig, frame)

        signal.signal(signum, handler)


def serve(settings: Settings) -> None:
    """Run the server until interrupted."""
    import uvicorn

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_http_logs()  # the embedded agents' requests
    forget_secret_environment()  # read into ``settings``; children must not inherit them
    composed = compose(settings)
    if settings.exposed:
        print_login_link(composed.accounts, settings)
    agents = embedded_agents(settings, composed.local_token, composed.nodes)
    if not composed.bookings.topology().nodes and not agents:
        LOG.warning(
            "no NVIDIA GPUs found on this machine and no --config: serving an empty cluster. "
            "Nodes join with `procplan agent --server URL --token T` (start the server with "
            "--agent-token T), or try `procplan server --demo` for a simulated cluster"
        )
    LOG.info(
        "ProcPlan on %s://%s:%s%s/ (database %s)",
        "https" if settings.tls else "http",
        settings.host,
        settings.port,
        settings.root_path,
        display_url(composed.store.engine.url),
    )
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": False,
        "log_level": settings.log_level.lower(),
        # Blocked /acquire calls and long polls must not hold a shutdown open for long.
        "timeout_graceful_shutdown": 5,
        # Local clients are who the kernel says they are (ADR 0009).
        "http": "procplan.peercred:PeerHttpProtocol",
        **tls_options(settings),
    }
    stop_agents = start_agents(agents)
    try:
        if settings.workers == 1:
            composed.bookings.warm_up()
            tune_gc()
            composed.scheduler.start()
            composed.nodes.start_writer()
            composed.audit.start()
            composed.sender.start()
            try:
                config = uvicorn.Config(composed.app, **common)
                _run_until_signal(composed, config, settings, stop_agents)
            finally:
                composed.scheduler.stop()
                composed.housekeeper.close()
                composed.nodes.stop_writer()
                composed.audit.stop()
                composed.sender.stop()
            return
        composed.store.dispose()
        with worker_handoff(worker_payload(settings, composed.local_token)):
            uvicorn.run(
                "procplan.server:worker_app", factory=True, workers=settings.workers, **common
            )
    finally:
        stop_agents()


def tls_options(settings: Settings) -> dict[str, str]:
    """uvicorn's options for HTTPS (none without a certificate). The Unix socket, when there
    is one, speaks TLS too: uvicorn applies one SSL context to every listener."""
    if settings.ssl_certfile is None or settings.ssl_keyfile is None:
        return {}
    return {"ssl_certfile": str(settings.ssl_certfile), "ssl_keyfile": str(settings.ssl_keyfile)}


def print_login_link(accounts: AccountService, settings: Settings) -> None:
    """Like Jupyter's token URL: a one-time link that signs the server's own user (its first
    admin) in from a browser on another machine. Printed to the terminal, never logged."""
    owner = current_account()
    accounts.store.save_user(owner, accounts.clock.now(), role="admin", unix_user=owner)
    secret = accounts.login_link(owner)
    host = socket.getfqdn() if settings.host in ("0.0.0.0", "::") else settings.host
    minutes = accounts.settings.link_s // 60
    scheme = "https" if settings.tls else "http"
    print(
        f"\nSign in as {owner} (admin) from another machine, once, within {minutes} minutes:\n"
        f"    {scheme}://{host}:{settings.port}{settings.root_path}/login.html#link={secret}\n"
        "On this machine you are signed in already. More links: "
        "`procplan user login-link NAME`.\n",
        file=sys.stderr,
        flush=True,
    )


def _listeners(config: Any, settings: Settings) -> tuple[list[socket.socket], list[socket.socket]]:
    """The TCP socket (HTTPS with a certificate), and the Unix socket when one is configured
    (plain HTTP always: its clients are on this host, and ``unix://`` URLs speak HTTP)."""
    tcp = [config.bind_socket()]
    local: list[socket.socket] = []
    if settings.unix_socket is not None:
        from procplan.peercred import unix_listener

        local.append(unix_listener(settings.unix_socket))
        LOG.info("also listening on %s", settings.unix_socket)
    return tcp, local


def _run_until_signal(
    composed: Composed, config: Any, settings: Settings, stop_agents: Callable[[], None]
) -> None:
    """uvicorn, with the cycle stopped as soon as a shutdown signal arrives: during the
    graceful shutdown no agent can reach us, and a cycle still running would call their
    nodes offline and requeue jobs that are fine (their long polls are still being served).
    The same signal wakes every long poll (``JobWaiter.close``: each answers at once, so the
    graceful shutdown waits for none) and stops the embedded agents alongside (``--demo``'s
    end their jobs). The signal is not raised again after the shutdown: ``serve`` still has
    its own cleanup to do, and the exit is a normal one (status 0)."""
    import asyncio

    import uvicorn

    tcp, local = _listeners(config, settings)

    def wind_down() -> None:  # on a thread: a signal handler must not wait for locks
        composed.waiter.close()
        stop_agents()

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            composed.scheduler.request_stop()
            if not self.should_exit:
                threading.Thread(target=wind_down, name="procplan-stop", daemon=True).start()
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)  # uvicorn >= 0.29 re-raises
            if isinstance(captured, list):
                captured.clear()

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            # uvicorn gives every socket it is handed the same SSL context: the Unix socket
            # is served here, beside it, without one (uvicorn's shutdown closes it too).
            await super().startup(sockets=sockets)
            if self.should_exit:
                return
            loop = asyncio.get_running_loop()
            for sock in local:

                def protocol() -> asyncio.Protocol:
                    made: asyncio.Protocol = config.http_protocol_class(
                        config=config, server_state=self.server_state, app_state=self.lifespan.state
                    )
                    return made

                self.servers.append(
                    await loop.create_server(protocol, sock=sock, backlog=config.backlog)
                )

    _Server(config).run(sockets=tcp)


if __name__ == "__main__":  # pragma: no cover
    # ``python -m procplan.server`` is ProcPlan 1.0's way to start its server: run that
    # program (``procplan-server``'s flags, a CLI one layer up) as a program. The server
    # module itself depends on no CLI code (the import contracts check it).
    import runpy

    runpy.run_module("procplan.cli.compat_server", run_name="__main__", alter_sys=True)
