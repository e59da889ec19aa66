"""JSON responses encoded with orjson: compact, UTF-8, ``charset`` in the content type.

Availability payloads run to megabytes; orjson encodes them several times faster than the
standard library, which is most of a grid request's time in ProcPlan.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

LOG = logging.getLogger("procplan.api")
T = TypeVar("T")
JSON_MEDIA_TYPE = "application/json; charset=utf-8"
NATIVE_PREFIX = "/api/v1"  # native routes add a machine ``code`` to their errors


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Encode ``payload`` once and send it as is (no response-model validation)."""
    return Response(
        orjson.dumps(payload), status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers
    )


def error_response(
    message: str, status: int, code: str | None = None, request_id: str | None = None
) -> Response:
    """The one error shape: ``{"error", "status"}`` plus ``code`` on native routes, and the
    ``request_id`` an unexpected error is logged under."""
    body: dict[str, Any] = {"error": message, "status": status}
    if code is not None:
        body["code"] = code
    if request_id is not None:
        body["request_id"] = request_id
    return json_response(body, status)


def is_native_path(path: str) -> bool:
    """Native routes (``/api/v1``) give their errors a machine ``code``."""
    return path.startswith(NATIVE_PREFIX)


# An entity-tag (RFC 9110 §8.8.3): optional ``W/`` then a quoted string; ``*`` matches any.
_ENTITY_TAG = re.compile(r'\*|(?:W/)?"[^"]*"')


def body_etag(body: bytes) -> str:
    """A strong validator: the quoted BLAKE2b digest of the exact body bytes."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2 for ``If-None-Match``: weak comparison (``W/`` ignored on both
    sides) against each tag of the comma-separated list; ``*`` matches any current body."""
    opaque = etag.removeprefix("W/")
    for tag in _ENTITY_TAG.findall(if_none_match):
        if tag == "*" or tag.removeprefix("W/") == opaque:
            return True
    return False


def conditional_json(request: Request, payload: Any) -> Response:
    """A 200 JSON reply with an ``ETag``, or ``304 Not Modified`` when ``If-None-Match`` holds it.

    The web pages poll the calendar, nodes and jobs every few seconds; an unchanged answer
    then costs a hash instead of the transfer and the browser's re-parse and re-render. The
    tag hashes the bytes actually sent, so it changes exactly when the body does, whatever
    changed underneath. ``Cache-Control: no-cache`` lets clients keep the body but makes them
    revalidate each time. Error replies are not built here and carry no tag.
    """
    body = orjson.dumps(payload)
    headers = {"ETag": body_etag(body), "Cache-Control": "no-cache"}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=200, media_type=JSON_MEDIA_TYPE, headers=headers)


def render_each(items: Iterable[T], render: Callable[[T], Any], what: str) -> list[Any]:
    """``render`` of every item, leaving out (with a logged warning) any item that cannot be
    rendered: one bad row, stored before a check existed, must not take a whole list down."""
    rendered: list[Any] = []
    for item in items:
        try:
            rendered.append(render(item))
        except Exception:  # whatever broke, the other rows are still good
            LOG.warning(
                "%s %s cannot be rendered: left out", what, getattr(item, "id", "?"), exc_info=True
            )
    return rendered
