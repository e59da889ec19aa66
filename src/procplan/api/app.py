"""``create_app``: the FastAPI application over already-composed services."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from procplan import __version__
from procplan.api.deps import AppContext
from procplan.api.errors import install_error_handlers
from procplan.api.routes import procplan_compat, v1_bookings, v1_cluster

DEFAULT_WEB_ROOT = Path(__file__).resolve().parent.parent / "web"


def create_app(context: AppContext, web_root: Path | None = None) -> FastAPI:
    """Routes first, then the web UI's static files at ``/`` (no path escapes the root)."""
    app = FastAPI(
        title="ProcPlan",
        version=__version__,
        description="Book GPUs on a calendar; ProcPlan-compatible and native APIs.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = context
    install_error_handlers(app)
    app.include_router(procplan_compat.router)
    app.include_router(v1_bookings.router)
    app.include_router(v1_cluster.router)
    root = (web_root or DEFAULT_WEB_ROOT).resolve()
    if not root.is_dir():
        raise ValueError(f"web root '{root}' does not exist or is not a directory")
    app.mount("/", StaticFiles(directory=root, html=True), name="web")
    return app
