"""Start the server from a command line: the one place a client-side module reaches the
composition root.

``procplan.config`` and ``procplan.server`` are imported lazily so that the client commands
(and their import-linter contract) never load FastAPI, SQLAlchemy or the store.
"""

from __future__ import annotations

from typing import Any


def start_server(overrides: dict[str, Any]) -> None:
    """Build ``Settings`` from the options the user passed (env and TOML fill the rest), serve.

    Options left at ``None`` are dropped so that they never mask an environment variable.
    """
    from procplan.config import Settings
    from procplan.server import serve

    given = {key: value for key, value in overrides.items() if value is not None}
    serve(Settings(**given))
