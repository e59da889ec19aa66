"""``procplan-cli``: ProcPlan's weekly availability report, same flags and same text.

Kept on argparse (not Typer) so that flags, usage errors and help behave as ProcPlan's did;
the native ``procplan calendar`` command offers the same table with friendlier defaults.
Like ``procplan`` it reads through ``DisplayClient`` (every server string terminal-safe) and
sanitises its stderr lines.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from procplan.cli.common import DisplayClient
from procplan.cli.weektable import (
    host_name,
    no_match_message,
    render_week_table,
    select_nodes,
    week_window,
)
from procplan.client import ApiError, InvalidResponse, ProcPlanClient, ServerUnreachable
from procplan.present import MESSAGE_LIMIT, terminal_text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="procplan-cli", description="Inspect GPU availability via a running ProcPlan server."
    )
    parser.add_argument(
        "--url", required=True, help="Base URL of the ProcPlan server, e.g. http://localhost:8080"
    )
    parser.add_argument(
        "--node",
        action="append",
        dest="nodes",
        help="Show only this node id (repeatable). Defaults to the current host name.",
    )
    parser.add_argument("-a", "--all", action="store_true", help="Show availability for all nodes.")
    parser.add_argument(
        "--date",
        help="Inspect one full UTC day (YYYY-MM-DD). Default: the current week, Monday 00:00 UTC.",
    )
    return parser


def _error(line: str) -> None:
    """One stderr line in ProcPlan's words; sanitised, as it may quote server text."""
    sys.stderr.write(terminal_text(line, MESSAGE_LIMIT) + "\n")


def _contact_failure(exc: ServerUnreachable | ApiError) -> str:
    """The reason text after ProcPlan's ``Failed to ...:`` prefixes."""
    if isinstance(exc, ApiError):
        return f"HTTP Error {exc.status}: {exc.message}"
    return exc.reason


def _fetch_nodes(client: ProcPlanClient) -> list[dict[str, object]] | None:
    """``/api/nodes`` or None after writing ProcPlan's error line."""
    try:
        nodes = client.compat.nodes().get("nodes") or []
    except (ServerUnreachable, ApiError) as exc:
        _error(f"Failed to contact server: {_contact_failure(exc)}")
        return None
    except InvalidResponse:
        _error("Server returned invalid JSON while listing nodes.")
        return None
    return [node for node in nodes if isinstance(node, dict) and "id" in node]


def _report(client: ProcPlanClient, node_id: str, start: datetime, end: datetime) -> str | None:
    """One node's table, or None after writing ProcPlan's per-node error line."""
    try:
        payload = client.compat.availability(node_id, start, end, granularity="day")
    except (ServerUnreachable, ApiError) as exc:
        _error(f"Failed to fetch availability for {node_id}: {_contact_failure(exc)}")
        return None
    except InvalidResponse:
        _error(f"Invalid JSON for node {node_id} availability.")
        return None
    return render_week_table(payload)


def main(argv: list[str] | None = None) -> int:
    """Exit 0 with every report printed; 1 on a bad date, no server, bad JSON or no node.

    The date is checked before any request (a typo should not wait on the network), and a
    node whose availability failed makes the exit status 1 even though the other nodes are
    still printed (ProcPlan exited 0 there).
    """
    args = _parser().parse_args(argv)
    try:
        start, end = week_window(args.date, datetime.now(tz=UTC))
    except ValueError as exc:
        _error(str(exc))
        return 1
    with DisplayClient(args.url) as client:
        nodes = _fetch_nodes(client)
        if nodes is None:
            return 1
        wanted = None if args.all else set(args.nodes or [host_name()])
        selected = select_nodes(nodes, wanted)
        if not selected:
            message = no_match_message(wanted) if wanted else "No nodes reported by the server."
            _error(message)
            return 1
        reports = [_report(client, str(node["id"]), start, end) for node in selected]
    sys.stdout.write("\n".join(report for report in reports if report is not None))
    return 0 if all(report is not None for report in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
