"""The one place the client builds HTTP requests: base URL, credential, JSON, error mapping.

Every part of the client (``jobs``, ``nodes``, ``bookings``, ``accounts``, ``agent``) and the
notifier sends through a ``Transport``, so that URL handling (including ``unix:///path.sock``
servers), the credential (``auth``), the "act for" header, JSON encoding and decoding, and the
mapping of failures to ``errors`` exist once. A part never holds an ``httpx`` object.

``request``/``call`` are for JSON routes; ``send`` returns the response as it is (any status)
for the few routes whose bodies are not JSON (job logs, shipped agent logs, the notifier's
ProcPlan-exact output), and ``check``/``decode`` give those the same error mapping.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
import orjson

from procplan.client.auth import Credential, resolve_credential, unix_socket_path
from procplan.client.errors import InvalidResponse, ServerUnreachable, error_from

DEFAULT_URL = "http://127.0.0.1:8080"
URL_ENV = "PROCPLAN_URL"
USER_HEADER = "X-ProcPlan-User"  # "act for this user": only admins may send it
UNIX_BASE_URL = "http://localhost"  # what httpx addresses over a Unix socket (Host: localhost)

JsonDict = dict[str, Any]

WAIT_SLACK_S = 10.0
"""Extra read time for a long poll beyond its own timeout (``wait`` plus this), so that a wait
the server answers at its deadline is not mistaken for a dead server by the read timeout."""


def resolve_url(explicit: str | None) -> str:
    """The server URL: ``--url`` if given, else ``$PROCPLAN_URL``, else the local default."""
    for candidate in (explicit, os.environ.get(URL_ENV)):
        if candidate and candidate.strip():
            return candidate.strip().rstrip("/")
    return DEFAULT_URL


def segment(value: object) -> str:
    """One URL path segment: user, tenant and node names may hold characters that need
    quoting; job ids may be given as ints and are sent as text."""
    return quote(str(value), safe="")


def drop_none(values: Mapping[str, Any]) -> JsonDict:
    """Leave unset arguments out, so the server's defaults apply."""
    return {key: value for key, value in values.items() if value is not None}


class Transport:
    """One connection pool to one server, with the headers every request carries.

    ``credential`` is what the client proves itself with; by default (``discover``) the one
    ``auth.resolve_credential`` finds (``$PROCPLAN_TOKEN``, then ``procplan login``'s), else
    none (the server's host then knows us by our Unix user). ``act_as`` sends
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
        self.base_url = base_url.strip().rstrip("/")
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

    def close(self) -> None:
        self._http.close()

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
        failures raise: ``ServerUnreachable`` when no answer came, ``InvalidResponse`` when one
        came that httpx cannot decode (a broken content encoding). ``None`` parameters are left
        out; ``timeout`` replaces the client's for this call only (long polls need more)."""
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            return self._http.request(
                method,
                path,
                params=drop_none(params or {}),
                content=content,
                headers=headers,
                **extra,
            )
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(self.base_url, f"timed out ({exc})") from exc
        except httpx.DecodingError as exc:
            raise InvalidResponse(self.base_url + path, str(exc) or "undecodable body") from exc
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            raise ServerUnreachable(self.base_url, str(exc) or type(exc).__name__) from exc

    @staticmethod
    def check(response: httpx.Response) -> httpx.Response:
        """``response`` if it is a success, else the ``ApiError`` it carries, raised."""
        if not response.is_success:
            raise error_from(response)
        return response

    def decode(self, response: httpx.Response, path: str) -> Any:
        """The JSON body of a success (``{}`` when empty); ``InvalidResponse`` if not JSON."""
        if not response.content:
            return {}
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise InvalidResponse(self.base_url + path, f"body is not JSON ({exc})") from exc

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
        """Send one JSON request and return the decoded answer; every failure is a
        ``ClientError``. ``headers`` are added to this request's. The override point for
        callers that filter every answer (the CLI's terminal-safe ``DisplayTransport``)."""
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        content = orjson.dumps(body) if body is not None else None
        response = self.send(
            method, path, params=params, content=content, headers=headers, timeout=timeout
        )
        return self.decode(self.check(response), path)

    def call(
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


class OwnsTransport:
    """A client that owns its ``transport``: closes it on ``close()`` and as a context
    manager (the user's client and the node agent's share this)."""

    transport: Transport

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()
