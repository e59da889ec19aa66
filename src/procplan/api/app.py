"""``create_app``: the FastAPI application over already-composed services."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from procplan import __version__
from procplan.api.boundary import install_openapi
from procplan.api.crosssite import CrossSite, allowed_host_names
from procplan.api.deps import AppContext
from procplan.api.errors import install_error_handlers
from procplan.api.guard import Guard
from procplan.api.identity import IdentityConfig
from procplan.api.policy import check_policies
from procplan.api.routes import (
    procplan_compat,
    srun_compat,
    v1_accounts,
    v1_agents,
    v1_bookings,
    v1_cluster,
    v1_idle,
    v1_jobs,
    v1_nodes,
    v1_notify,
    v1_tenants,
    v1_usage,
)

DEFAULT_WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
API_PREFIX = "/api"
# Top-level API paths (local-gpu-scheduler's and the health check) that are not files either.
ROOT_API_PATHS = frozenset({"/acquire", "/status", "/jobs", "/health", "/metrics"})


class _WebMount(Mount):
    """The static mount at ``/`` that leaves ``/api/...`` and ``ROOT_API_PATHS`` to the router:
    a known API path with another method gets the router's JSON 405, an unknown one its JSON
    404 (never the static files' plain-text answers, which clients cannot parse)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            return Match.NONE, {}
        if path.rstrip("/") in ROOT_API_PATHS:
            return Match.NONE, {}
        return super().matches(scope)


def create_app(
    context: AppContext,
    web_root: Path | None = None,
    identity: IdentityConfig | None = None,
    hosts: frozenset[str] | None = None,
    origins: tuple[str, ...] = (),
) -> FastAPI:
    """Routes first, then the web UI's static files at ``/`` (no path escapes the root)."""
    app = FastAPI(
        title="ProcPlan",
        version=__version__,
        description="Book GPUs on a calendar; ProcPlan-compatible and native APIs.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = context
    app.state.identity = identity or IdentityConfig(context.accounts)
    install_error_handlers(app)
    app.add_middleware(
        CrossSite, hosts=hosts or allowed_host_names("127.0.0.1", ()), origins=origins
    )
    app.add_middleware(Guard, limits=context.body_limits)
    app.include_router(procplan_compat.router)
    app.include_router(v1_bookings.router)
    app.include_router(v1_idle.router)
    app.include_router(v1_cluster.router)
    app.include_router(v1_jobs.router)
    app.include_router(v1_tenants.router)
    app.include_router(v1_nodes.router)
    app.include_router(v1_agents.router)
    app.include_router(srun_compat.router)
    app.include_router(v1_accounts.router)
    app.include_router(v1_usage.router)
    app.include_router(v1_notify.router)
    root = (web_root or DEFAULT_WEB_ROOT).resolve()
    if not root.is_dir():
        raise ValueError(f"web root '{root}' does not exist or is not a directory")
    check_policies(app.router.routes)  # a route without a policy never serves
    app.router.routes.append(_WebMount("/", StaticFiles(directory=root, html=True), name="web"))
    install_openapi(app)
    return app
