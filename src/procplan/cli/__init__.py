"""The ``procplan`` command line (``procplan.cli.main``).

Start-up time matters here (issue #17: ``procplan bookings --json`` in under 200 ms), so
commands import their modules lazily. One import is cut off for the whole package: httpx
imports its own command line (Click and Rich, about 25 ms) unless that fails, and no
ProcPlan command uses it, so ``httpx._main`` is marked missing before httpx loads (then only
``httpx.main``, httpx's CLI entry point, is unavailable in this process).
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
