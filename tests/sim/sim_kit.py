"""Where the trace files are, for the simulator's tests.

The shared traces sit beside the checkout (``<repo>/../shared/traces``) or inside it; the
60-job smoke trace also ships with the tests (``data/``), so its end-to-end replay always runs.
A test that needs a file found in neither place skips."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRACES = next(
    (p for p in (REPO / "shared" / "traces", REPO.parent / "shared" / "traces") if p.is_dir()),
    REPO.parent / "shared" / "traces",
)


DATA = Path(__file__).resolve().parent / "data"


def trace_file(name: str) -> Path:
    """The shared copy of ``name``, else the one shipped in ``data/``."""
    shared = TRACES / name
    return shared if shared.exists() else DATA / name


def needs_trace(*names: str) -> pytest.MarkDecorator:
    """Skip the test where one of ``names`` is in neither place."""
    missing = [name for name in names if not trace_file(name).exists()]
    return pytest.mark.skipif(bool(missing), reason=f"trace files {missing} not here")
