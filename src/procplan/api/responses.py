"""JSON responses encoded with orjson: compact, UTF-8, ``charset`` in the content type.

Availability payloads run to megabytes; orjson encodes them several times faster than the
standard library, which is most of a grid request's time in ProcPlan.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

JSON_MEDIA_TYPE = "application/json; charset=utf-8"


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Encode ``payload`` once and send it as is (no response-model validation)."""
    return Response(
        orjson.dumps(payload), status_code=status, media_type=JSON_MEDIA_TYPE, headers=headers
    )


def error_response(message: str, status: int, code: str | None = None) -> Response:
    """The one error shape: ``{"error", "status"}`` plus ``code`` on native routes."""
    body: dict[str, Any] = {"error": message, "status": status}
    if code is not None:
        body["code"] = code
    return json_response(body, status)
