"""The one place the client builds HTTP requests: base URL, credential, JSON, error mapping.

Every part of the client (``jobs``, ``nodes``, ``bookings``, ``accounts``, ``agent``) and the
notifier sends through a ``Transport``, so that URL handling (including ``unix:///path.sock``
servers), the credential (``auth``), the "act for" header, JSON encoding and decoding, and the
mapping of failures to ``errors`` exist once. A part never holds an ``httpx`` object.

``request``/``call`` are for JSON routes; ``send`` returns the response as it is (any status)
for the few routes whose bodies are not JSON (job logs, shipped agent logs, the notifier's
ProcPlan-exact output), and ``check``/``decode`` give those the same error mapping.

Several servers on one database (high availability, ADR 0021): the base URL may be a
comma-separated list (``http://a:8080,http://b:8080``). ``send`` tries the current server and,
when it cannot be reached, the next ones; the server that answers becomes current. A request
goes to another server only when it surely never reached the first one (the connection was
refused or never opened) or when it is a safe read (GET, HEAD): a write whose connection broke
after it was sent may have been applied, so that stays ``ServerUnreachable`` and the caller
decides. One URL behaves exactly as before.
"""

from __future__ import annotations

import os
import ssl
import threading
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
Verify = ssl.SSLContext | bool


def tls_verify(url: str, socket_path: str | None, verify: Verify) -> Verify:
    """What a pool verifies TLS with. A plain ``http://`` or Unix-socket server never speaks
    TLS, so its pool gets a context that trusts no certificate at all (it fails closed if it
    ever met TLS) instead of loading the system's CA bundle, which costs a command line about
    20 ms at start-up (issue #17). ``https://`` keeps ``verify`` as given."""
    plain = socket_path is not None or url.lower().startswith("http://")
    if verify is True and plain:
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA: refuses all
    return verify


"""How an https server's certificate is checked: ``True`` against the system's CAs, or the
file ``$SSL_CERT_FILE`` (or directory ``$SSL_CERT_DIR``) names; an ``SSLContext`` as it says."""

FAILOVER_CONNECT_S = 3.0
"""Connect timeout when there are several servers: a host that is down (no refusal, the
packets vanish) must not hold a request for the whole timeout before the next server is
tried. A single server keeps the one timeout it always had."""
SAFE_METHODS = frozenset({"GET", "HEAD"})
"""Methods sent again to the next server after a connection broke mid-request: they change
nothing, so a second delivery cannot apply anything twice."""
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol)
"""Failures that prove the request never reached a server (refused, no route, connect timed
out, a scheme httpx cannot speak): any method may go to the next one."""

WAIT_SLACK_S = 10.0
"""Extra read time for a long poll beyond its own timeout (``wait`` plus this), so that a wait
the server answers at its deadline is not mistaken for a dead server by the read timeout."""


def resolve_url(explicit: str | None) -> str:
    """The server URL: ``--url`` if given, else ``$PROCPLAN_URL``, else the local default."""
    for candidate in (explicit, os.environ.get(URL_ENV)):
        if candidate and candidate.strip():
            return candidate.strip().rstrip("/")
    return DEFAULT_URL


def server_urls(base_url: str) -> list[str]:
    """The base URLs of ``base_url``: one URL, or a comma-separated list of them (several
    servers on one database), each without trailing slash; empty entries are skipped."""
    urls = [part.strip().rstrip("/") for part in base_url.split(",")]
    return [url for url in urls if url] or [base_url.strip().rstrip("/")]


def segment(value: object) -> str:
    """One URL path segment: user, tenant and node names may hold characters that need
    quoting; job ids may be given as ints and are sent as text."""
    return quote(str(value), safe="")


def drop_none(values: Mapping[str, Any]) -> JsonDict:
    """Leave unset arguments out, so the server's defaults apply."""
    return {key: value for key, value in values.items() if value is not None}


class Transport:
    """A connection pool per server, with the headers every request carries.

    ``base_url`` is one URL or a comma-separated list (see the module docstring); the
    attribute ``base_url`` is the server in use now (for messages), ``base_urls`` all of
    them. ``credential`` is what the client proves itself with; by default (``discover``) the
    one ``auth.resolve_credential`` finds (``$PROCPLAN_TOKEN``, then ``procplan login``'s,
    saved under the URL text exactly as given, so a list signs in once for all its servers,
    which share their accounts through the database), else none (the server's host then
    knows us by our Unix user). ``act_as`` sends ``X-ProcPlan-User``: a request to act for
    that user, which only admins may make.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        act_as: str | None = None,
        *,
        credential: Credential | None = None,
        discover: bool = True,
        verify: Verify = True,
    ) -> None:
        self.base_urls = server_urls(base_url)
        self._current = 0
        self.act_as = act_as or None
        if credential is None and discover:
            credential = resolve_credential(base_url.strip().rstrip("/"))
        self.credential = credential
        headers = {"Accept": "application/json"}
        if self.act_as is not None:
            headers[USER_HEADER] = self.act_as
        if credential is not None:
            headers.update(credential.headers())
        self._headers = headers
        self._timeout = timeout
        self._verify = verify
        self._clients: dict[int, httpx.Client] = {}
        self._clients_lock = threading.Lock()  # the agent and ``procplan run`` send from threads
        self._http(0)  # the first server's pool now: a bad URL fails at construction, as before

    @property
    def base_url(self) -> str:
        """The server requests go to now: the last one that answered."""
        return self.base_urls[self._current]

    def _http(self, index: int) -> httpx.Client:
        """The pool of server ``index``, made on first use (most runs never fail over)."""
        with self._clients_lock:
            client = self._clients.get(index)
            if client is None:
                url = self.base_urls[index]
                socket_path = unix_socket_path(url)
                verify = tls_verify(url, socket_path, self._verify)
                client = httpx.Client(
                    base_url=UNIX_BASE_URL if socket_path is not None else url,
                    timeout=self._timeout_of(self._timeout),
                    headers=self._headers,
                    transport=(
                        httpx.HTTPTransport(uds=socket_path, verify=verify) if socket_path else None
                    ),
                    verify=verify,
                )
                self._clients[index] = client
            return client

    def _timeout_of(self, seconds: float) -> float | httpx.Timeout:
        if len(self.base_urls) == 1:
            return seconds
        return httpx.Timeout(seconds, connect=min(seconds, FAILOVER_CONNECT_S))

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

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
        out; ``timeout`` replaces the client's for this call only (long polls need more).

        With several servers each is tried at most once, from the current one on, as the
        module docstring says; the error raised is the last server's."""
        extra: dict[str, Any] = {} if timeout is None else {"timeout": self._timeout_of(timeout)}
        first = self._current
        count = len(self.base_urls)
        for step in range(count):
            index = (first + step) % count
            url = self.base_urls[index]
            try:
                response = self._http(index).request(
                    method,
                    path,
                    params=drop_none(params or {}),
                    content=content,
                    headers=headers,
                    **extra,
                )
            except httpx.DecodingError as exc:
                raise InvalidResponse(url + path, str(exc) or "undecodable body") from exc
            except (httpx.RequestError, httpx.InvalidURL) as exc:
                if step + 1 < count and _may_retry(method, exc):
                    continue
                raise _unreachable(url, exc) from exc
            self._current = index
            return response
        raise AssertionError("unreachable: the last server's failure raises")  # pragma: no cover

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


def _may_retry(method: str, exc: Exception) -> bool:
    """May the request that failed with ``exc`` go to the next server?"""
    if isinstance(exc, NEVER_SENT):
        return True
    return method.upper() in SAFE_METHODS and isinstance(exc, httpx.TransportError)


def _unreachable(url: str, exc: Exception) -> ServerUnreachable:
    if isinstance(exc, httpx.TimeoutException):
        return ServerUnreachable(url, f"timed out ({exc})")
    return ServerUnreachable(url, str(exc) or type(exc).__name__)


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
