"""Cross-site protection (issue #12): what a web page the user happens to visit cannot do.

A browser attaches the user's session cookie, and on the server's own host its requests come
from the user's uid, so any page could act as the user unless the server tells its own pages
from foreign ones. Three checks, before any route runs:

- **Host** must name this server (the bind address, localhost names, this machine's names, the
  configured public names, or any IP literal): a DNS-rebinding page reaches us under its own
  domain name, which is refused, for reads too.
- **Origin** (else **Referer**) of a state-changing request, when the browser sends one, must
  be this server itself (the same host and port as ``Host``) or a configured origin; ``null``
  (sandboxed frames, some redirects) is refused.
- A state-changing request with a body must say it is JSON: the content types a page may send
  cross-site without asking first (``text/plain``, forms, multipart, or none) are refused, so
  no HTML form and no "simple" ``fetch`` reaches a route. A request with an
  ``Authorization`` header is exempt: no page can send one cross-site without a CORS
  preflight, and this server answers no preflight.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from procplan.api.prefix import route_path
from procplan.api.responses import error_response, is_native_path

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIMPLE_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""}
)
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def machine_names() -> set[str]:
    names = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):  # a resolver that fails
        names.add(socket.getfqdn().lower())
    return names


def allowed_host_names(bind_host: str, extra: Iterable[str]) -> frozenset[str]:
    """The names a request's ``Host`` may carry (ports aside)."""
    names = set(LOCAL_NAMES) | machine_names() | {name.strip().lower() for name in extra}
    if bind_host not in ("", "0.0.0.0", "::"):
        names.add(bind_host.lower())
    return frozenset(name for name in names if name)


def split_host(value: str) -> tuple[str, str]:
    """``Host`` (or an origin's netloc) as (lowercased name, port text)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        return name, rest.removeprefix(":")
    name, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    return name, port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class CrossSite:
    """ASGI middleware applying the module's three checks (400/403 with a JSON error)."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str], origins: Iterable[str] = ()) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = frozenset(origin.rstrip("/").lower() for origin in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.problem(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message, code = problem
        native = is_native_path(route_path(scope))
        await error_response(message, status, code if native else None)(scope, receive, send)

    def problem(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = _headers(scope)
        host = headers.get("host", "")
        name, _port = split_host(host)
        if not (name in self.hosts or name.endswith(".localhost") or _is_ip(name)):
            return 400, f"Host '{host[:100]}' is not a name of this server", "unknown_host"
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin") or _origin_of(headers.get("referer", ""))
        if origin is not None and not self._same_site(origin, host):
            return 403, f"cross-site request refused (from {origin[:100]})", "cross_site"
        bearer = "authorization" in headers  # a page cannot send one without a preflight
        if not bearer and _has_body(headers) and _media_type(headers) in SIMPLE_TYPES:
            return (
                415,
                "send the body as JSON (Content-Type: application/json)",
                "unsupported_media_type",
            )
        return None

    def _same_site(self, origin: str, host: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null", file:, extensions
        default = "443" if parts.scheme == "https" else "80"
        return _with_port(parts.netloc, default) == _with_port(host.lower(), default)


_WANTED = frozenset(
    {b"host", b"origin", b"referer", b"content-type", b"content-length", b"transfer-encoding",
     b"authorization"}
)  # fmt: skip


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in scope["headers"]:
        if key in _WANTED:
            found.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    return found


def _origin_of(referer: str) -> str | None:
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "null"


def _with_port(netloc: str, default: str) -> str:
    name, port = split_host(netloc)
    return f"{name}:{port or default}"


def _has_body(headers: dict[str, str]) -> bool:
    if "transfer-encoding" in headers:
        return True
    length = headers.get("content-length", "0").strip()
    return length not in ("", "0")


def _media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()
