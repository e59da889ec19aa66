"""Typed synchronous HTTP client for a ProcPlan server.

One client serves the CLI, the TUI, the agent and the notifier so that URL handling (including
``unix:///path.sock`` servers), credentials (``client_auth``), JSON decoding and error mapping
exist once. Methods return the parsed JSON exactly as the server sent it (plain dicts): the
wire shapes are the contract (``COMPAT.md`` and ``/api/v1``), and callers that only render
them gain nothing from a second set of classes.

Failures come in three kinds so that callers can pick exit codes and messages:
``ApiError`` (the server answered and refused), ``ServerUnreachable`` (no answer at all) and
``InvalidResponse`` (a 2xx answer that is not the JSON we expect).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx
import orjson

from procplan.client_accounts import AccountsApi
from procplan.client_auth import Credential, resolve_credential, unix_socket_path
from procplan.client_errors import (
    ApiError,
    ClientError,
    InvalidResponse,
    ServerUnreachable,
    TimeArg,
    error_from,
    format_time,
)
from procplan.client_jobs import JobsApi
from procplan.client_nodes import NodesApi

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "PROCPLAN_URL"
USER_HEADER = "X-ProcPlan-User"  # "act for this user": only admins may send it
UNIX_BASE_URL = "http://localhost"  # what httpx addresses over a Unix socket (Host: localhost)

JsonDict = dict[str, Any]


def resolve_url(explicit: str | None) -> str:
    """The server URL: ``--url`` if given, else ``$PROCPLAN_URL``, else the local default."""
    for candidate in (explicit, os.environ.get(URL_ENV)):
        if candidate and candidate.strip():
            return candidate.strip().rstrip("/")
    return DEFAULT_URL


def current_user() -> str:
    """The OS user name the server records as booking owner.

    ``getpass.getuser`` fails in some containers (no passwd entry, no env vars); the server
    still needs a name, so fall back to the numeric uid rather than refusing to work.
    """
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def _drop_none(values: Mapping[str, Any]) -> JsonDict:
    return {key: value for key, value in values.items() if value is not None}


class ProcPlanClient(JobsApi, NodesApi, AccountsApi):
    """Talks to one ProcPlan server; usable as a context manager to close the connection pool.

    Job, tenant and cluster-status methods come from ``JobsApi`` (``client_jobs.py``), node
    and log methods from ``NodesApi``, identity methods from ``AccountsApi``.

    ``credential`` is what the client proves itself with; by default (``discover``) the one
    ``client_auth.resolve_credential`` finds (``$PROCPLAN_TOKEN``, then ``procplan login``'s),
    else none (the server's host then knows us by our Unix user). ``act_as`` sends
    ``X-ProcPlan-User``: a request to act for that user, which only admins may make.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        act_as: str | None = None,
        *,
        credential: Credential | None = None,
        discover: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.act_as = act_as or None
        if credential is None and discover:
            credential = resolve_credential(self.base_url)
        self.credential = credential
        headers = {"Accept": "application/json"}
        if self.act_as is not None:
            headers[USER_HEADER] = self.act_as
        if credential is not None:
            headers.update(credential.headers())
        socket_path = unix_socket_path(self.base_url)
        self._http = httpx.Client(
            base_url=UNIX_BASE_URL if socket_path is not None else self.base_url,
            timeout=timeout,
            headers=headers,
            transport=httpx.HTTPTransport(uds=socket_path) if socket_path is not None else None,
        )

    def user_name(self) -> str:
        """The user "mine" means: the one acted for, else the server's answer to ``me``, else
        (a server too old for ``/me``, or nobody signed in) the local login name, which is
        whom a local server takes us for."""
        if self.act_as is not None:
            return self.act_as
        try:
            name = self.me().get("user")
        except (ApiError, InvalidResponse):
            name = None
        return name if isinstance(name, str) and name else current_user()

    def __enter__(self) -> ProcPlanClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request and return the decoded JSON; every failure maps to a ClientError.

        ``timeout`` replaces the client's timeout for this call only (long polls need more);
        ``headers`` are added to this request's.
        """
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        content = orjson.dumps(body) if body is not None else None
        url = self.base_url + path
        response = self.send(
            method, path, params=params, content=content, headers=headers, timeout=timeout
        )
        if not response.is_success:
            raise error_from(response)
        if not response.content:
            return {}
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise InvalidResponse(url, f"body is not JSON ({exc})") from exc

    def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """Send one request and return the response as it is (any status); only transport
        failures raise (``ServerUnreachable``). For routes whose bodies are not JSON."""
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            return self._http.request(
                method,
                path,
                params=_drop_none(params or {}),
                content=content,
                headers=headers,
                **extra,
            )
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(self.base_url, f"timed out ({exc})") from exc
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise ServerUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc

    def _object(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JsonDict:
        """Like ``request`` but insists on a JSON object, the shape of every route we call."""
        data = self.request(
            method, path, params=params, body=body, timeout=timeout, headers=headers
        )
        if not isinstance(data, dict):
            raise InvalidResponse(self.base_url + path, "expected a JSON object")
        return data

    # -- ProcPlan-compatible routes (COMPAT.md section 1) ----------------------------------

    def compat_nodes(self) -> JsonDict:
        """``GET /api/nodes``: nodes in config order with their GPUs."""
        return self._object("GET", "/api/nodes")

    def compat_availability(
        self,
        node_id: str,
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        granularity: str | None = None,
    ) -> JsonDict:
        """``GET /api/availability`` for one node (hour or day grid)."""
        params = {
            "node_id": node_id,
            "start": format_time(start) if start is not None else None,
            "end": format_time(end) if end is not None else None,
            "granularity": granularity,
        }
        return self._object("GET", "/api/availability", params=params)

    def compat_availability_bulk(
        self,
        node_ids: list[str] | None = None,
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        granularity: str | None = None,
    ) -> JsonDict:
        """``POST /api/availability_bulk``: one availability payload per node, in order."""
        body = _drop_none(
            {
                "node_ids": node_ids,
                "start": format_time(start) if start is not None else None,
                "end": format_time(end) if end is not None else None,
                "granularity": granularity,
            }
        )
        return self._object("POST", "/api/availability_bulk", body=body)

    def compat_book(
        self,
        node_id: str,
        start: TimeArg,
        end: TimeArg,
        user_label: str,
        *,
        priority: str | None = None,
        gpu_ids: list[str] | None = None,
        gpu_count: int | None = None,
    ) -> JsonDict:
        """``POST /api/book`` (whole hours only); returns ``{"booking_id", ...}``."""
        body = _drop_none(
            {
                "node_id": node_id,
                "start": format_time(start),
                "end": format_time(end),
                "user_label": user_label,
                "priority": priority,
                "gpu_ids": gpu_ids,
                "gpu_count": gpu_count,
            }
        )
        return self._object("POST", "/api/book", body=body)

    def compat_mark_done(self, booking_id: int) -> JsonDict:
        """``POST /api/mark_done``: end a booking early."""
        return self._object("POST", "/api/mark_done", body={"booking_id": booking_id})

    def compat_cancel(self, booking_id: int) -> JsonDict:
        """``DELETE /api/bookings/{id}``."""
        return self._object("DELETE", f"/api/bookings/{booking_id}")

    def compat_reload_config(self) -> JsonDict:
        """``POST /api/reload_config``: re-read the server's topology file."""
        return self._object("POST", "/api/reload_config")

    def health(self) -> JsonDict:
        """``GET /health``."""
        return self._object("GET", "/health")

    # -- native API (/api/v1) ----------------------------------------------------------------

    def list_nodes(self) -> JsonDict:
        """``GET /api/v1/nodes``: ``{"nodes": [...]}`` with GPU index, uuid and memory."""
        return self._object("GET", "/api/v1/nodes")

    def list_bookings(
        self,
        *,
        node: str | None = None,
        gpu: str | None = None,
        user: str | None = None,
        status: str | None = None,
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> JsonDict:
        """``GET /api/v1/bookings``: ``{"bookings": [...], "total": int}``; filters are ANDed."""
        params = {
            "node": node,
            "gpu": gpu,
            "user": user,
            "status": status,
            "start": format_time(start) if start is not None else None,
            "end": format_time(end) if end is not None else None,
            "limit": limit,
            "offset": offset,
        }
        return self._object("GET", "/api/v1/bookings", params=params)

    def get_booking(self, booking_id: int) -> JsonDict:
        """``GET /api/v1/bookings/{id}``."""
        return self._object("GET", f"/api/v1/bookings/{booking_id}")

    def create_booking(
        self,
        node_id: str,
        start: TimeArg,
        *,
        end: TimeArg | None = None,
        duration_minutes: int | None = None,
        gpu_ids: list[str] | None = None,
        gpu_count: int | None = None,
        priority: str | None = None,
        label: str | None = None,
    ) -> JsonDict:
        """``POST /api/v1/bookings``: ``{"booking": {...}, "conflicts_with_jobs": [...]}``.

        Give ``end`` or ``duration_minutes``, and ``gpu_ids`` or ``gpu_count``; the server
        validates the combination so that its message is the one users see.
        """
        body = _drop_none(
            {
                "node_id": node_id,
                "gpu_ids": gpu_ids,
                "gpu_count": gpu_count,
                "start": format_time(start),
                "end": format_time(end) if end is not None else None,
                "duration_minutes": duration_minutes,
                "priority": priority,
                "label": label,
            }
        )
        return self._object("POST", "/api/v1/bookings", body=body)

    def set_booking_end(self, booking_id: int, end: TimeArg) -> JsonDict:
        """``PATCH /api/v1/bookings/{id}``: move the end (extend or shorten)."""
        return self._object(
            "PATCH", f"/api/v1/bookings/{booking_id}", body={"end": format_time(end)}
        )

    def release_booking(self, booking_id: int) -> JsonDict:
        """``POST /api/v1/bookings/{id}/release``: complete now, freeing the future."""
        return self._object("POST", f"/api/v1/bookings/{booking_id}/release")

    def cancel_booking(self, booking_id: int) -> JsonDict:
        """``POST /api/v1/bookings/{id}/cancel``."""
        return self._object("POST", f"/api/v1/bookings/{booking_id}/cancel")

    def calendar(self, start: TimeArg, end: TimeArg, node_ids: list[str] | None = None) -> JsonDict:
        """``GET /api/v1/calendar``: per-GPU claim intervals over ``[start, end)``."""
        params = {
            "start": format_time(start),
            "end": format_time(end),
            "node_ids": ",".join(node_ids) if node_ids else None,
        }
        return self._object("GET", "/api/v1/calendar", params=params)


__all__ = [
    "ApiError",
    "ClientError",
    "InvalidResponse",
    "ProcPlanClient",
    "ServerUnreachable",
    "TimeArg",
    "format_time",
]
