"""Start the server from a command line: the one place a client-side module reaches the
composition root.

``procplan.config`` and ``procplan.server`` are imported lazily so that the client commands
(and their import-linter contract) never load FastAPI, SQLAlchemy or the store.
"""

from __future__ import annotations

import sys
from typing import Any

from procplan.core.errors import DomainError


def start_server(overrides: dict[str, Any]) -> int:
    """Build ``Settings`` from the options the user passed (env and TOML fill the rest), serve.

    Options left at ``None`` are dropped so that they never mask an environment variable.
    Returns an exit code: 2 for invalid settings, 1 when the server cannot start (bad topology
    file, unreadable path), 0 after a normal shutdown. Errors are one message, not a traceback,
    because they are configuration mistakes, not bugs.
    """
    from procplan.config import Settings

    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        settings = Settings(**given)
    except ValueError as exc:
        sys.stderr.write(f"invalid settings: {exc}\n")
        return 2

    from procplan.server import serve

    try:
        serve(settings)
    except (DomainError, OSError) as exc:
        sys.stderr.write(f"cannot start ProcPlan server: {exc}\n")
        return 1
    return 0
