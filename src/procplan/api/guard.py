"""The outermost line of the API: a request id on every reply, a bounded body, and an
unexpected exception contained in a JSON 500 that keeps the connection open.

Starlette answers an exception that no handler claims with a 500 and then re-raises it, and
uvicorn closes the connection it came on: the client's next request on that keep-alive
connection fails although it did nothing wrong. ``Guard`` sits inside Starlette's last-resort
middleware, answers such an exception itself and returns normally, so only the request that
failed fails. It logs the traceback under a request id that the reply carries (body
``request_id`` and header ``X-Request-ID``), which is what an admin greps for.

A body larger than its limit is refused with 413 before it is read when ``Content-Length``
says so, and as soon as the limit is passed when it does not (chunked uploads): one request
cannot make the server hold more than the limit.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from procplan.api.prefix import route_path
from procplan.api.responses import error_response, is_native_path
from procplan.core.errors import DomainError

LOG = logging.getLogger("procplan.api")
REQUEST_ID_HEADER = b"x-request-id"
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})  # their bodies are never read: not counted
# Agents ship job logs in raw chunks: they get their own, larger limit.
_LOG_CHUNK_PATH = re.compile(r"^/api/v1/agents/[^/]+/jobs/[^/]+/logs/?$")


class PayloadTooLarge(DomainError):
    """The request body is larger than the server accepts."""

    status = 413
    default_code = "payload_too_large"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Bytes one request body may have: ``log_chunk`` for an agent's log upload, ``default``
    for everything else."""

    default: int = 1 << 20
    log_chunk: int = 4 << 20

    def for_path(self, path: str) -> int:
        return self.log_chunk if _LOG_CHUNK_PATH.match(path) else self.default


def new_request_id() -> str:
    """16 hex digits: unique enough across processes and restarts to find one log line."""
    return os.urandom(8).hex()


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses these before we see them
    return None


def too_large_message(limit: int) -> str:
    return f"request body too large: at most {limit} bytes are accepted"


class Guard:
    """ASGI middleware: request id, body limit, containment of unexpected exceptions."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        if scope.get("method") not in _BODILESS:
            limit = self.limits.for_path(route_path(scope))
            declared = _declared_length(scope)
            if declared is not None and declared > limit:
                message = too_large_message(limit)
                await _send_error(send, scope, request_id, 413, message, "payload_too_large")
                return
            receive = _bounded(receive, limit)
        tag = (REQUEST_ID_HEADER, request_id.encode())
        started = False

        async def tagged_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = message.get("headers")
                if isinstance(headers, list):  # the response's own list: add to it
                    headers.append(tag)
                else:
                    message = {**message, "headers": [*(headers or ()), tag]}
            await send(message)

        try:
            await self.app(scope, receive, tagged_send)
        except Exception:
            LOG.exception(
                "request %s: unhandled error on %s %s",
                request_id,
                scope.get("method"),
                scope.get("path"),
            )
            if started:  # part of a reply is out: nothing sound can follow it
                raise
            message = "internal server error"
            await _send_error(send, scope, request_id, 500, message, "internal_error")


def _bounded(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises ``PayloadTooLarge`` once the body passes ``limit`` bytes."""
    received = 0

    async def bounded() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(too_large_message(limit))
        return message

    return bounded


async def _send_error(
    send: Send, scope: Scope, request_id: str, status: int, message: str, code: str
) -> None:
    """The error shape of ``api.errors`` (``code`` on native routes only) plus the id."""
    native = is_native_path(route_path(scope))
    response = error_response(message, status, code if native else None, request_id)
    response.headers["X-Request-ID"] = request_id
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    """A response never reads the request: this ``receive`` only satisfies the signature."""
    return {"type": "http.disconnect"}
