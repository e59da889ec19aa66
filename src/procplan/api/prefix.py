"""Served under a path prefix behind a reverse proxy (``root_path``, issue #16, ADR 0019).

With ``root_path = "/procplan"`` the public address of everything is
``https://host/procplan/...``. Proxies forward such a request in one of two ways: stripped
(nginx ``proxy_pass http://127.0.0.1:8080/;`` sends ``/api/v1/nodes``) or as it came
(``proxy_pass http://127.0.0.1:8080;`` sends ``/procplan/api/v1/nodes``). ``ServedUnder``
accepts both, and direct requests to the server in either form too: it gives every request
the ASGI form that uvicorn's ``--root-path`` gives (``scope["root_path"]`` is the prefix and
``scope["path"]`` starts with it), so that URLs built from the request (redirects, the
OpenAPI ``servers``, the documentation pages' asset links, the session cookie's path) carry
the prefix, and the router matches on the path without it (``route_path``).

Code that looks at a request's path to decide something (the body limit of agents' log
uploads, native error bodies, the web files' mount) reads ``route_path(scope)``, never
``scope["path"]``.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send


def route_path(scope: Scope) -> str:
    """The request's path as the app's routes are written: without the root path."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :]
    return path


def root_path(scope: Scope) -> str:
    """The prefix the app is served under (``""`` at the root of its host)."""
    return str(scope.get("root_path", "")).rstrip("/")


class ServedUnder:
    """ASGI middleware: every HTTP request is under ``root`` (see the module docstring). The
    prefix itself without its slash (``/procplan``) is redirected to ``/procplan/``, as a
    directory is, so that the pages' relative links resolve under the prefix."""

    def __init__(self, app: ASGIApp, root: str) -> None:
        self.app = app
        self.root = root.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.root:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == self.root and scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            target = self.root + "/" + (f"?{query}" if query else "")
            await RedirectResponse(target, status_code=308)(scope, receive, send)
            return
        scope = dict(scope)
        if not path.startswith(self.root + "/"):
            raw: bytes = scope.get("raw_path") or path.encode("utf-8")
            scope["path"] = self.root + path
            scope["raw_path"] = self.root.encode("ascii") + raw
        scope["root_path"] = self.root
        await self.app(scope, receive, send)
