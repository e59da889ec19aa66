"""What every part of the client shares: its errors and the wire text of its arguments.

Failures come in three kinds so that callers can pick exit codes and messages: ``ApiError``
(the server answered and refused), ``ServerUnreachable`` (no answer at all) and
``InvalidResponse`` (a 2xx answer that is not the JSON we expect). The transport raises them
and every part formats its time arguments the same way, so this module sits below all of them
and imports none (no cycle inside the package).
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson

from procplan.core.timeutil import to_iso

TimeArg = str | datetime | int
"""A timestamp argument: ISO 8601 text (sent as is), an aware datetime or an ``Instant``."""


class ClientError(Exception):
    """Base of every failure this client reports."""


class ApiError(ClientError):
    """The server answered with a non-2xx status; ``message`` is its ``error`` text."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status
        self.message = message
        self.code = code


class ServerUnreachable(ClientError):
    """No HTTP answer: connection refused, DNS failure, timeout, dropped connection."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach ProcPlan server at {url}: {reason}")
        self.url = url
        self.reason = reason


class InvalidResponse(ClientError):
    """A 2xx answer whose body is not a JSON object (wrong server, proxy page, truncation)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"invalid response from {url}: {reason}")
        self.url = url
        self.reason = reason


def format_time(value: TimeArg) -> str:
    """Wire text of a timestamp argument; datetimes and instants become UTC ISO 8601."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    return to_iso(value)


def error_from(response: httpx.Response) -> ApiError:
    """Build an ``ApiError`` from a refusal; tolerate bodies that are not our JSON shape."""
    message = response.reason_phrase or f"HTTP {response.status_code}"
    code: str | None = None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text.strip()
        if text:
            message = text[:500]
    else:
        if isinstance(body, dict):
            detail = body.get("error", body.get("detail"))
            if detail is not None:
                message = detail if isinstance(detail, str) else orjson.dumps(detail).decode()
            raw_code = body.get("code")
            code = raw_code if isinstance(raw_code, str) else None
    return ApiError(response.status_code, message, code)
