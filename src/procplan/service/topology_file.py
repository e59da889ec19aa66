"""ProcPlan's JSON topology file: read and validate it fully before anything changes.

Used at start-up (``--config``) and by ``POST /api/reload_config``, which must answer a bad file
with a 400 and leave the running topology untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

from procplan.core.errors import TopologyError
from procplan.core.model import Topology
from procplan.core.topology import parse_topology


def read_topology_file(path: Path) -> Topology:
    """Load and validate a ProcPlan JSON config; errors name the file and the problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TopologyError(f"Cannot read configuration file '{path}': {exc.strerror}") from exc
    except ValueError as exc:
        raise TopologyError(f"Configuration file '{path}' is not valid JSON: {exc}") from exc
    return parse_topology(data)
