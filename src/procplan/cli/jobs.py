"""Job commands of ``procplan``: submit, queue, job, cancel (and the options ``run`` shares).

Like the booking commands they are thin: parse the human arguments, make the API calls of
ADR 0005, print. Every decision (placement, reason, position, estimated start, quotas) is the
server's; the queue and the detail view show it as sent (``jobview``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from procplan.cli.common import (
    EXIT_REFUSED,
    AsOption,
    FormatOption,
    OutputFormat,
    UrlOption,
    connect,
    console,
    output_format,
    print_csv,
    print_rows,
    usage_error,
    utc_now,
    warn,
)
from procplan.cli.durations import parse_duration
from procplan.cli.format import booking_summary
from procplan.cli.jobview import detail_lines, priority_table, queue_table
from procplan.cli.usage import efficiency_line, job_usage
from procplan.client import ApiError, ProcPlanClient, Submitted
from procplan.client.auth import TOKEN_ENV
from procplan.core.jobs import parse_priority
from procplan.present import capped

# -- options shared by ``run`` and ``submit`` ------------------------------------------------

CommandArg = Annotated[
    list[str],
    typer.Argument(
        help="The command and its arguments (put them after --)",
        metavar="CMD",
        show_default=False,
    ),
]
GpusOpt = Annotated[int, typer.Option("-n", "--gpus", min=0, help="GPUs in total")]
GpuTypeOpt = Annotated[
    str | None,
    typer.Option(
        "--gpu-type",
        help="GPU model, e.g. A100 (a multi-node job gets one model; 'any' lets it mix)",
        show_default=False,
    ),
]
GpuMemOpt = Annotated[
    int | None,
    typer.Option("--gpu-mem", min=1, metavar="MB", help="Minimum memory per GPU (MiB)"),
]
TimeOpt = Annotated[
    str | None,
    typer.Option("--time", "-t", help="Time limit: 90m, 2h, 1h30m, 1d (default: open-ended)"),
]
PriorityOpt = Annotated[
    str | None,
    typer.Option(help="low, normal, high, urgent or an integer (default: normal)"),
]
TenantOpt = Annotated[str | None, typer.Option(help="Tenant (default: your first tenant)")]
BookingOpt = Annotated[
    int | None, typer.Option("--booking", help="Run on the GPUs of this booking of yours")
]
ReleaseBookingOpt = Annotated[
    bool,
    typer.Option(
        "--release-booking-on-exit",
        help="With --booking: when the job ends, release the booking too (frees its future)",
    ),
]
NodesOpt = Annotated[int, typer.Option("--nodes", min=1, help="Nodes (GPUs split evenly)")]
NodeOpt = Annotated[str | None, typer.Option("--node", help="Run on this node id")]
NameOpt = Annotated[str | None, typer.Option(help="Job name (default: the command's name)")]


@dataclass(frozen=True)
class Resources:
    """What ``run`` and ``submit`` both ask for, checked once and turned into request keys."""

    gpus: int = 1
    gpu_type: str | None = None
    gpu_mem: int | None = None
    time_limit_s: int | None = None
    priority: int | None = None
    tenant: str | None = None
    booking: int | None = None
    release_booking: bool = False
    nodes: int = 1
    node: str | None = None
    name: str | None = None

    @classmethod
    def parse(cls, *, time: str | None, priority: str | None, **given: Any) -> Resources:
        """Validate the text options (``--time``, ``--priority``) as usage errors (exit 2)."""
        limit = None
        if time is not None:
            try:
                limit = int(parse_duration(time).total_seconds())
            except ValueError as exc:
                usage_error(str(exc), "--time")
        level = None
        if priority is not None:
            try:
                level = parse_priority(priority)
            except ValueError as exc:
                usage_error(str(exc), "--priority")
        if given.get("release_booking") and given.get("booking") is None:
            usage_error("--release-booking-on-exit needs --booking", "--release-booking-on-exit")
        return cls(time_limit_s=limit, priority=level, **given)

    def body(self, kind: str, command: list[str]) -> dict[str, Any]:
        """The ``POST /api/v1/jobs`` keys for these resources; unset options are left out so
        the server's defaults apply."""
        values: dict[str, Any] = {
            "kind": kind,
            "name": self.name or default_name(command),
            "command": list(command),
            "gpu_count": self.gpus,
            "nodes": self.nodes,
            "gpu_type": self.gpu_type,
            "gpu_memory_mb": self.gpu_mem,
            "time_limit_s": self.time_limit_s,
            "priority": self.priority,
            "tenant_id": self.tenant,
            "booking_id": self.booking,
            "release_booking": True if self.release_booking else None,
            "node_id": self.node,
        }
        return {key: value for key, value in values.items() if value is not None}


def default_name(command: list[str]) -> str:
    """The program's base name, as Slurm names a job after its script."""
    return Path(command[0]).name if command else ""


def parse_env(pairs: list[str], export: bool, base: dict[str, str]) -> dict[str, str]:
    """``--export-env`` copies ``base``, less ``$PROCPLAN_TOKEN`` (a secret the server would
    store with the job, for its admins to read); each ``K=V`` is added on top (so it wins)."""
    env = {k: v for k, v in base.items() if k != TOKEN_ENV} if export else {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            usage_error(f"invalid --env {pair!r}: use KEY=VALUE", "--env")
        env[key] = value
    return env


def submitted_text(answer: Submitted, parsable: bool) -> str:
    """``Submitted job 42`` / ``Submitted array 42 (100 tasks: 42–141)``; only the id with
    ``--parsable`` (like ``sbatch --parsable``) so scripts can capture it."""
    ids = [capped(i) for i in answer.job_ids]
    array_id = answer.array_id
    ident = capped(array_id if array_id is not None else answer.job_id)
    if parsable:
        return ident
    if array_id is None:
        return f"Submitted job {ident}"
    span = f"{ids[0]}–{ids[-1]}" if ids else "none"
    return f"Submitted array {ident} ({len(ids)} tasks: {span})"


def submit(
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
    array: Annotated[
        str | None, typer.Option(help="Task indices: 0-99, 0-99:2 or 1,3,7 (one job each)")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option(help="Directory to run in (default: the current one)")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("--env", "-e", help="KEY=VALUE for the job (repeatable)")
    ] = None,
    export_env: Annotated[
        bool, typer.Option("--export-env", help="Pass this shell's environment to the job")
    ] = False,
    output: Annotated[str | None, typer.Option(help="File for the job's stdout")] = None,
    error: Annotated[str | None, typer.Option(help="File for the job's stderr")] = None,
    parsable: Annotated[bool, typer.Option("--parsable", help="Print only the id")] = False,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Queue a batch job (the node agent runs it); prints its id."""
    resources = Resources.parse(
        time=time_limit, priority=priority, gpus=gpus, gpu_type=gpu_type, gpu_mem=gpu_mem,
        tenant=tenant, booking=booking, release_booking=release_booking, nodes=nodes, node=node,
        name=name,
    )  # fmt: skip
    extra = {
        "workdir": str((workdir or Path.cwd()).resolve()),
        "env": parse_env(env or [], export_env, dict(os.environ)) or None,
        "stdout": output,
        "stderr": error,
        "array": array,
    }
    body = {**resources.body("batch", command), **_present(extra)}
    with connect(url, act_as=act_as) as client:
        answer = client.jobs.submit(body)
    typer.echo(submitted_text(answer, parsable))


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def queue(
    all_states: Annotated[
        bool, typer.Option("--all", help="Finished jobs too (default: pending and running)")
    ] = False,
    user: Annotated[str | None, typer.Option(help="Only this user's jobs")] = None,
    me: Annotated[bool, typer.Option("--me", help="Only your jobs")] = False,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's jobs")] = None,
    state: Annotated[
        str | None, typer.Option(help="Only these states, comma-separated (e.g. pending)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw job list")] = False,
    fmt: FormatOption = None,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """The job queue, like squeue: everyone's pending and running jobs by default."""
    as_json = output_format(as_json, fmt) is OutputFormat.JSON
    if user and me:
        usage_error("give either --user or --me, not both", "--user / --me")
    if all_states and state:
        usage_error("give either --all or --state, not both", "--all / --state")
    with connect(url, raw=as_json, act_as=act_as) as client:
        page = client.jobs.list(
            user=client.user_name() if me else user,
            tenant_id=tenant,
            state=None if all_states else (state or "active"),
            limit=limit,
        )
    if as_json:
        typer.echo(json.dumps(page.raw, indent=2))
        return
    if fmt is OutputFormat.CSV:
        print_csv(queue_table(page.jobs, utc_now()))
        return
    if not page.jobs:
        typer.echo("No jobs.")
        return
    console().print(queue_table(page.jobs, utc_now()))
    if page.total > len(page.jobs):
        typer.echo(f"Showing {len(page.jobs)} of {page.total}; use --limit or filters to see more.")


def sprio(
    user: Annotated[str | None, typer.Option(help="Only this user's jobs")] = None,
    me: Annotated[bool, typer.Option("--me", help="Only your jobs")] = False,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's jobs")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many rows")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw rows")] = False,
    fmt: FormatOption = None,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Pending jobs in queue order with their effective priority and its parts, like sprio:
    PRIORITY (job priority + tenant tier) + AGE + FAIRSHARE + SIZE = EFFECTIVE."""
    if user and me:
        usage_error("give either --user or --me, not both", "--user / --me")
    as_json = output_format(as_json, fmt) is OutputFormat.JSON
    with connect(url, raw=as_json, act_as=act_as) as client:
        answer = client.jobs.priority(
            user=client.user_name() if me else user, tenant_id=tenant, limit=limit
        )
    rows: list[Any] = answer.raw if as_json else list(answer.rows)
    shown = print_rows(rows, as_json, "No pending jobs.", priority_table, fmt)
    if shown and answer.total > len(answer.rows):
        typer.echo(f"Showing {len(answer.rows)} of {answer.total}; use --limit or filters.")


JobIdArg = Annotated[str, typer.Argument(help="Job id (as listed by 'procplan queue')")]


def job(
    job_ident: JobIdArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw job object")] = False,
    url: UrlOption = None,
) -> None:
    """Everything about one job: state, reason, position, estimated start, allocation."""
    with connect(url, raw=as_json) as client:
        answer = client.jobs.get(job_ident)
        usage = None if as_json else job_usage(client, answer.id, bool(answer.started_at))
    if as_json:
        typer.echo(json.dumps(answer.raw, indent=2))
        return
    lines = detail_lines(answer, utc_now())
    typer.echo("\n".join(lines if usage is None else [*lines, efficiency_line(usage)]))


def cancel(
    ids: Annotated[
        list[str] | None,
        typer.Argument(help="Job ids (as listed by 'procplan queue')", show_default=False),
    ] = None,
    booking: Annotated[
        list[int] | None,
        typer.Option(
            "--booking",
            metavar="ID",
            help="Cancel this booking instead (repeatable); job ids may not be given with it",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Cancel jobs (pending ones are withdrawn, running ones stopped): cancel 17 18; or
    bookings: cancel --booking 5 (never both in one command)."""
    if ids and booking:
        usage_error(
            f"give job ids or --booking, not both (jobs: {' '.join(ids)}; bookings: "
            f"{' '.join(str(b) for b in booking)}); cancel each kind separately",
            "IDS / --booking",
        )
    if not ids and not booking:
        usage_error("give job ids to cancel, or --booking ID", "IDS / --booking")
    targets = [str(b) for b in booking] if booking else list(ids or [])
    failures = 0
    with connect(url, act_as=act_as) as client:
        for ident in targets:
            try:
                typer.echo(_cancel_one(client, ident, bool(booking)))
            except ApiError as exc:
                failures += 1
                what = "booking" if booking else "job"
                warn(f"error: {what} {ident}: {exc.message}")
    if failures:
        raise typer.Exit(EXIT_REFUSED)


def _cancel_one(client: ProcPlanClient, ident: str, booking: bool) -> str:
    """One cancellation and the line that reports it."""
    if booking:
        return f"Cancelled {booking_summary(client.bookings.cancel(int(ident)))}"
    job = client.jobs.cancel(ident)
    return f"Cancelled job {capped(ident if job is None else job.id)}"
