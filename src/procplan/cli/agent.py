"""``procplan agent``: the per-node daemon (ADR 0006).

It registers this node's GPUs with the server, heartbeats readings and GPU processes, runs
the batch jobs the server places here and ships their logs. SIGTERM or Ctrl-C stops it and
leaves the jobs running; a restarted agent adopts them. Exit 1 when the server refuses the
token, 2 for a wrong command line.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Annotated

import typer

from procplan.agent.daemon import AgentConfig, run_agent
from procplan.agent.host import READERS, quiet_http_logs
from procplan.cli.common import fail, usage_error
from procplan.client import URL_ENV, resolve_url
from procplan.client.agent import TOKEN_ENV

LOG_LEVELS = ("debug", "info", "warning", "error")
MIN_INTERVAL_S = 0.2  # what the server accepts (ADR 0006 registration)
MAX_INTERVAL_S = 300.0


def agent(
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar=URL_ENV,
            help="ProcPlan server URL (default: $PROCPLAN_URL, else http://127.0.0.1:8080)",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV,
            help="The server's agent token (default: $PROCPLAN_AGENT_TOKEN)",
            show_default=False,
        ),
    ] = None,
    node_id: Annotated[
        str | None, typer.Option(help="This node's id (default: the host name)", show_default=False)
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between heartbeats")] = 2.0,
    fake_gpus: Annotated[
        int | None,
        typer.Option(help="Simulate N GPUs (implies --reader fake)", show_default=False),
    ] = None,
    reader: Annotated[
        str, typer.Option(help="GPU reader: auto (NVML, else nvidia-smi), nvml, smi, fake, none")
    ] = "auto",
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where running jobs are recorded for adoption after a restart"),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="Address other nodes reach this one at (default: the IP that reaches the server)",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    allow_root_jobs: Annotated[
        bool,
        typer.Option(
            "--allow-root-jobs",
            help="Run jobs whose account is root (uid 0); refused by default",
        ),
    ] = False,
) -> None:
    """Run the node agent: report this node's GPUs and run the batch jobs placed on it."""
    if reader not in READERS:
        usage_error(f"unknown reader {reader!r}: use one of {', '.join(READERS)}", "--reader")
    if log_level.lower() not in LOG_LEVELS:
        usage_error(f"unknown log level {log_level!r}", "--log-level")
    if not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        usage_error(
            f"the interval must be between {MIN_INTERVAL_S:g} and {MAX_INTERVAL_S:g} s",
            "--interval",
        )
    if fake_gpus is not None:
        if fake_gpus < 0:
            usage_error("the GPU count must not be negative", "--fake-gpus")
        if reader not in ("auto", "fake"):
            usage_error("--fake-gpus goes with --reader fake", "--fake-gpus")
        reader = "fake"
    if not token:
        fail(f"procplan agent: no token: pass --token or set {TOKEN_ENV} (the server's "
             "--agent-token)", 2)  # fmt: skip
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_http_logs()
    config = AgentConfig(
        server_url=resolve_url(server),
        token=token,
        node_id=node_id or socket.gethostname(),
        interval_s=interval,
        reader=reader,
        fake_gpus=fake_gpus or 0,
        state_dir=state_dir,
        address=address,
        allow_root_jobs=allow_root_jobs,
    )
    code = run_agent(config)
    if code:
        raise typer.Exit(code)
