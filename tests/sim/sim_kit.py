"""Where the shared trace files are, for the simulator's tests.

They sit beside the checkout (``<repo>/../shared/traces``) or inside it; a test that needs one
skips where it is absent (the traces are not part of the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRACES = next(
    (p for p in (REPO / "shared" / "traces", REPO.parent / "shared" / "traces") if p.is_dir()),
    REPO.parent / "shared" / "traces",
)


def needs_trace(name: str) -> pytest.MarkDecorator:
    """Skip the test where ``TRACES / name`` is absent."""
    return pytest.mark.skipif(not (TRACES / name).exists(), reason=f"trace file {name} not here")
