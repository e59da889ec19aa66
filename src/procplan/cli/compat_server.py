"""``procplan-server``: ProcPlan's server command line, mapped onto ``Settings``.

Host and port keep ProcPlan's defaults (``0.0.0.0:8080``) because existing deployments rely on
them; the native ``procplan server`` defaults to localhost instead.
"""

from __future__ import annotations

import argparse

from procplan.cli.serve import start_server


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="procplan-server", description="Run a ProcPlan server.")
    parser.add_argument("--config", help="Path to the ProcPlan JSON topology file")
    parser.add_argument(
        "--database", help="Path to the SQLite database file (parent directory is created)"
    )
    parser.add_argument("--web-root", help="Directory of the web UI static files")
    parser.add_argument("--host", default="0.0.0.0", help="Interface to bind (default: 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8080, help="Port to bind (default: 8080)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ProcPlan's flags and serve until interrupted."""
    args = _parser().parse_args(argv)
    return start_server(
        {
            "config": args.config,
            "database": args.database,
            "web_root": args.web_root,
            "host": args.host,
            "port": args.port,
        }
    )


if __name__ == "__main__":
    raise SystemExit(main())
