"""``create_app``: the FastAPI application over already-composed services."""

from __future__ import annotations

import secrets
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse
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
from procplan.api.policy import DOCS_ASSETS, check_policies
from procplan.api.prefix import ServedUnder, root_path, route_path
from procplan.api.routes import (
    procplan_compat,
    srun_compat,
    v1_accounts,
    v1_agents,
    v1_bookings,
    v1_cluster,
    v1_feeds,
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
# Swagger UI, ReDoc and their favicon, from the fastapi-offline package: /docs and /redoc work
# without the internet (air-gapped clusters) and load nothing from another host.
DOCS_ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
OPENAPI_URL = "/openapi.json"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# The docs pages may load nothing from another host, whatever their scripts try (ReDoc's
# sidebar asks cdn.redoc.ly for a logo): the browser refuses it. Their one inline script
# (Swagger UI's set-up) carries the page's nonce; both inject inline styles.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)


def _locked_down(page: HTMLResponse) -> HTMLResponse:
    """``page`` with ``DOCS_CSP`` (a fresh nonce on its inline scripts) and no sniffing."""
    nonce = secrets.token_urlsafe(16)
    html = bytes(page.body).decode("utf-8").replace("<script>", f'<script nonce="{nonce}">')
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": DOCS_CSP.format(nonce=nonce),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


class _WebMount(Mount):
    """The static mount at ``/`` that leaves ``/api/...`` and ``ROOT_API_PATHS`` to the router:
    a known API path with another method gets the router's JSON 405, an unknown one its JSON
    404 (never the static files' plain-text answers, which clients cannot parse)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = route_path(scope)
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
    served_under: str = "",
) -> FastAPI:
    """Routes first, then the web UI's static files at ``/`` (no path escapes the root).
    ``served_under``: the path prefix of a reverse proxy (``Settings.root_path``)."""
    app = FastAPI(
        title="ProcPlan",
        version=__version__,
        description="Book GPUs on a calendar; ProcPlan-compatible and native APIs.",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # served below, from local files
        redoc_url=None,
        # No OpenTelemetry here (metrics are Prometheus'): without this, every request asks
        # the global providers whether one was configured (issue #18).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = context
    app.state.identity = identity or IdentityConfig(context.accounts)
    install_error_handlers(app)
    app.add_middleware(
        CrossSite, hosts=hosts or allowed_host_names("127.0.0.1", ()), origins=origins
    )
    app.add_middleware(Guard, limits=context.body_limits)
    if served_under:  # outermost: the others see the scope it makes
        app.add_middleware(ServedUnder, root=served_under)
    # FastAPI matches a request against each included router in turn, every route of it (a
    # regex each): the most frequent requests first. Every agent's heartbeat and poll, then
    # ProcPlan's clients and srun's; no two routers' paths overlap, so order decides no match.
    app.include_router(v1_agents.router)
    app.include_router(procplan_compat.router)
    app.include_router(srun_compat.router)
    app.include_router(v1_bookings.router)
    app.include_router(v1_feeds.router)
    app.include_router(v1_idle.router)
    app.include_router(v1_cluster.router)
    app.include_router(v1_jobs.router)
    app.include_router(v1_tenants.router)
    app.include_router(v1_nodes.router)
    app.include_router(v1_accounts.router)
    app.include_router(v1_usage.router)
    app.include_router(v1_notify.router)
    root = (web_root or DEFAULT_WEB_ROOT).resolve()
    if not root.is_dir():
        raise ValueError(f"web root '{root}' does not exist or is not a directory")
    _add_docs(app)
    check_policies(app.router.routes)  # a route without a policy never serves
    app.router.routes.append(_WebMount("/", StaticFiles(directory=root, html=True), name="web"))
    install_openapi(app)
    return app


def _add_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` over ``/openapi.json``, with their scripts and
    styles served from ``DOCS_ASSETS``; every URL in the pages carries the root path."""
    title = app.title
    no_validator = {"validatorUrl": None}  # Swagger UI would fetch a badge from swagger.io

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = root_path(request.scope)
        assets = root + DOCS_ASSETS
        return _locked_down(
            get_swagger_ui_html(
                openapi_url=root + OPENAPI_URL,
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{assets}/swagger-ui-bundle.js",
                swagger_css_url=f"{assets}/swagger-ui.css",
                swagger_favicon_url=f"{assets}/favicon.png",
                oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
                swagger_ui_parameters=no_validator,
            )
        )

    async def swagger_ui_redirect(_request: Request) -> HTMLResponse:
        return _locked_down(get_swagger_ui_oauth2_redirect_html())

    async def redoc(request: Request) -> HTMLResponse:
        root = root_path(request.scope)
        assets = root + DOCS_ASSETS
        return _locked_down(
            get_redoc_html(
                openapi_url=root + OPENAPI_URL,
                title=f"{title} - ReDoc",
                redoc_js_url=f"{assets}/redoc.standalone.js",
                redoc_favicon_url=f"{assets}/favicon.png",
                with_google_fonts=False,
            )
        )

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, swagger_ui_redirect, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_ASSETS_DIR), name="docs-assets")
