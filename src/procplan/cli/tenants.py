"""``procplan tenant``: create, list, show and change tenants (quotas, weights, members).

Tenants are the groups that GPU quotas and fair share apply to. The commands send the Go
scheduler's field names (``max_concurrent_jobs``, ``fair_share_weight``, ``priority_tier``,
``allow_preemption``; COMPAT §3) plus ``allow_borrow``; quotas left out mean unlimited, and
``none`` in ``tenant set`` clears one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.table import Table

from procplan.cli.common import (
    FormatOption,
    JsonOption,
    OutputFormat,
    UrlOption,
    connect,
    output_format,
    print_rows,
    usage_error,
)
from procplan.cli.format import short_time
from procplan.present import capped, cell, joined, terminal_text

app = typer.Typer(
    help="Tenants: groups with GPU quotas and fair-share weights.",
    no_args_is_help=True,
)

Payload = Mapping[str, Any]
NameArg = Annotated[str, typer.Argument(help="Tenant name")]
UNLIMITED = "unlimited"
CLEAR_WORDS = ("none", "unlimited")


def parse_limit(text: str, option: str) -> int | None:
    """A quota: a non-negative integer, or ``none``/``unlimited`` (sent as null: no limit)."""
    cleaned = text.strip().lower()
    if cleaned in CLEAR_WORDS:
        return None
    if not cleaned.isdigit():
        usage_error(f"invalid quota {text!r}: use a number or 'none'", option)
    return int(cleaned)


def tenant_name(tenant: Payload) -> str:
    return str(tenant.get("name") or tenant.get("id") or "?")


def members(tenant: Payload) -> list[str]:
    """Member user names; entries may be names or ``{"user": ...}`` objects."""
    names = []
    for member in tenant.get("members") or []:
        name = member.get("user", member.get("name")) if isinstance(member, dict) else member
        names.append(str(name))
    return names


def _quota(value: object) -> str:
    return UNLIMITED if value is None else str(value)


def _max_jobs(tenant: Payload) -> object:
    return tenant.get("max_concurrent_jobs", tenant.get("max_jobs"))


def _use(current: object, limit: object) -> str:
    """``3/8`` or ``3`` (no limit): usage beside its quota."""
    now = 0 if current is None else current
    return f"{now}/{limit}" if limit is not None else str(now)


def _yes_no(value: object) -> str:
    return "yes" if value else "no"


def _hours(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else ""


def tenants_table(tenants: Sequence[Payload]) -> Table:
    """One row per tenant: usage against quota, weight, tier, policy flags, members; every
    cell a sanitised, capped ``Text`` (no Rich markup)."""
    table = Table(title="Tenants", title_justify="left")
    columns = ("TENANT", "GPUS", "JOBS", "WEIGHT", "TIER", "BORROW", "PREEMPT", "GPU·H", "MEMBERS")
    for column in columns:
        table.add_column(column)
    for tenant in tenants:
        table.add_row(
            cell(tenant_name(tenant)),
            cell(_use(tenant.get("current_gpus"), tenant.get("max_gpus"))),
            cell(_use(tenant.get("current_jobs"), _max_jobs(tenant))),
            cell(tenant.get("fair_share_weight", "")),
            cell(tenant.get("priority_tier", "")),
            _yes_no(tenant.get("allow_borrow", True)),
            _yes_no(tenant.get("allow_preemption", True)),
            _hours(tenant.get("usage_gpu_hours")),
            cell(joined(members(tenant)), limit=None),
        )
    return table


def detail_lines(tenant: Payload) -> list[str]:
    """``Key: value`` lines of one tenant, quotas shown as ``unlimited`` when absent; values
    whole but sanitised."""
    rows = [
        ("Tenant", tenant_name(tenant)),
        ("Email", str(tenant.get("email") or "")),
        ("Members", ", ".join(members(tenant)) or "(none)"),
        ("Managers", ", ".join(capped(m) for m in tenant.get("managers") or []) or "(none)"),
        ("Max GPUs", _quota(tenant.get("max_gpus"))),
        ("Max jobs", _quota(_max_jobs(tenant))),
        ("Max GPU memory", _quota(tenant.get("max_gpu_memory_mb"))),
        ("Fair-share weight", str(tenant.get("fair_share_weight", ""))),
        ("Priority tier", str(tenant.get("priority_tier", ""))),
        ("Borrowing", _yes_no(tenant.get("allow_borrow", True))),
        ("Preemption", _yes_no(tenant.get("allow_preemption", True))),
        ("GPUs in use", _use(tenant.get("current_gpus"), tenant.get("max_gpus"))),
        ("Jobs running", _use(tenant.get("current_jobs"), _max_jobs(tenant))),
        ("Usage (GPU hours)", _hours(tenant.get("usage_gpu_hours"))),
        ("Created", short_time(tenant.get("created_at"))),
    ]
    return [f"{key}: {terminal_text(value)}" for key, value in rows if value]


MaxGpusCreate = Annotated[int | None, typer.Option("--max-gpus", min=0, help="GPU quota")]
MaxJobsCreate = Annotated[
    int | None, typer.Option("--max-jobs", min=0, help="Concurrent-job quota")
]
WeightOpt = Annotated[
    float | None, typer.Option("--weight", min=0.0, help="Fair-share weight (default 1)")
]
TierOpt = Annotated[int | None, typer.Option("--tier", help="Priority tier (added to priority)")]
EmailOpt = Annotated[str | None, typer.Option("--email", help="Contact address")]


@app.command()
def create(
    name: NameArg,
    max_gpus: MaxGpusCreate = None,
    max_jobs: MaxJobsCreate = None,
    weight: WeightOpt = None,
    no_borrow: Annotated[
        bool, typer.Option("--no-borrow", help="Never run beyond the GPU quota on idle GPUs")
    ] = False,
    no_preempt: Annotated[
        bool, typer.Option("--no-preempt", help="Its jobs never preempt others")
    ] = False,
    tier: TierOpt = None,
    email: EmailOpt = None,
    url: UrlOption = None,
) -> None:
    """Create a tenant (quotas left out are unlimited)."""
    values: dict[str, Any] = {
        "name": name,
        "max_gpus": max_gpus,
        "max_concurrent_jobs": max_jobs,
        "fair_share_weight": weight,
        "priority_tier": tier,
        "email": email,
        "allow_borrow": False if no_borrow else None,
        "allow_preemption": False if no_preempt else None,
    }
    with connect(url) as client:
        tenant = client.tenants.create({k: v for k, v in values.items() if v is not None})
    typer.echo(f"Created tenant {capped(tenant_name(tenant) if tenant else name)}")


@app.command("list")
def list_tenants(
    as_json: JsonOption = False, fmt: FormatOption = None, url: UrlOption = None
) -> None:
    """Every tenant with its usage against its quotas."""
    raw = output_format(as_json, fmt) is OutputFormat.JSON
    with connect(url, raw=raw) as client:
        rows = client.tenants.list().get("tenants") or []
    print_rows(rows, as_json, "No tenants.", tenants_table, fmt)


@app.command()
def show(name: NameArg, as_json: JsonOption = False, url: UrlOption = None) -> None:
    """One tenant: quotas, members and current usage."""
    with connect(url, raw=as_json) as client:
        tenant = client.tenants.get(name)
    if as_json:
        typer.echo(json.dumps(tenant, indent=2))
        return
    typer.echo("\n".join(detail_lines(tenant)))


def patch_body(
    max_gpus: str | None,
    max_jobs: str | None,
    settings: Mapping[str, object],
) -> dict[str, Any]:
    """The PATCH keys for the options given; a cleared quota is sent as null on purpose."""
    body = {key: value for key, value in settings.items() if value is not None}
    if max_gpus is not None:
        body["max_gpus"] = parse_limit(max_gpus, "--max-gpus")
    if max_jobs is not None:
        body["max_concurrent_jobs"] = parse_limit(max_jobs, "--max-jobs")
    return body


@app.command("set")
def set_tenant(
    name: NameArg,
    max_gpus: Annotated[
        str | None, typer.Option("--max-gpus", metavar="N|none", help="GPU quota")
    ] = None,
    max_jobs: Annotated[
        str | None, typer.Option("--max-jobs", metavar="N|none", help="Concurrent-job quota")
    ] = None,
    weight: WeightOpt = None,
    tier: TierOpt = None,
    borrow: Annotated[
        bool | None, typer.Option("--borrow/--no-borrow", help="Allow borrowing idle GPUs")
    ] = None,
    preempt: Annotated[
        bool | None, typer.Option("--preempt/--no-preempt", help="Allow preempting others")
    ] = None,
    email: EmailOpt = None,
    add_user: Annotated[
        list[str] | None, typer.Option("--add-user", help="Add a member (repeatable)")
    ] = None,
    remove_user: Annotated[
        list[str] | None, typer.Option("--remove-user", help="Remove a member (repeatable)")
    ] = None,
    manager: Annotated[
        bool | None,
        typer.Option(
            "--manager/--no-manager",
            help="The --add-user members manage the tenant's members and quotas, or no "
            "longer do (admins)",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Change a tenant's quotas, policy or members; prints the result."""
    settings = {
        "fair_share_weight": weight,
        "priority_tier": tier,
        "allow_borrow": borrow,
        "allow_preemption": preempt,
        "email": email,
    }
    body = patch_body(max_gpus, max_jobs, settings)
    if not body and not add_user and not remove_user:
        usage_error("nothing to change: give a quota, a setting, --add-user or --remove-user")
    if manager is not None and not add_user:
        usage_error("--manager and --no-manager apply to --add-user", "--manager")
    with connect(url) as client:
        if body:
            client.tenants.update(name, body)
        for user in add_user or []:
            client.tenants.add_member(name, user, manager)
        for user in remove_user or []:
            client.tenants.remove_member(name, user)
        tenant = client.tenants.get(name)
    typer.echo("\n".join(detail_lines(tenant)))


IDLE_CHOICES: dict[str, bool | None] = {"on": True, "off": False, "cluster": None}


@app.command("idle-reclaim")
def idle_reclaim(
    name: NameArg,
    mode: Annotated[
        str, typer.Argument(metavar="on|off|cluster", help="'cluster' follows the server setting")
    ],
    url: UrlOption = None,
) -> None:
    """Warn, then release idle bookings of the tenant's members, or never (admins; ADR 0013)."""
    if mode not in IDLE_CHOICES:
        usage_error(f"give on, off or cluster, not {terminal_text(mode)!r}", "MODE")
    with connect(url) as client:
        client.tenants.set_idle_reclaim(name, IDLE_CHOICES[mode])
    typer.echo(f"Idle reclaim for tenant {terminal_text(name)}: {mode}")
