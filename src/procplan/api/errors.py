"""Exception handlers: every error is JSON, never HTML, never a dropped connection.

Native routes (``/api/v1``) add a machine ``code``; ProcPlan-compatible routes keep
ProcPlan's two-key body. Exceptions nobody expected are not handled here but by
``api.guard``, which answers them without closing the connection.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from procplan.api.boundary import first_problem
from procplan.api.prefix import route_path
from procplan.api.responses import error_response, is_native_path
from procplan.core.errors import DomainError

_HTTP_CODES = {
    404: ("Not found", "not_found"),
    405: ("Method not allowed", "method_not_allowed"),
}


def is_native(request: Request) -> bool:
    return is_native_path(route_path(request.scope))


def _respond(request: Request, message: str, status: int, code: str) -> Response:
    return error_response(message, status, code if is_native(request) else None)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return _respond(request, exc.message, exc.status, exc.code)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    default_message, code = _HTTP_CODES.get(exc.status_code, (str(exc.detail), "http_error"))
    message = (
        default_message
        if exc.detail in (None, "Not Found", "Method Not Allowed")
        else str(exc.detail)
    )
    response = _respond(request, message, exc.status_code, code)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    """Path parameters are checked by FastAPI: the same one-message 400 as the boundary."""
    assert isinstance(exc, RequestValidationError)
    refusal = first_problem(list(exc.errors()))
    return _respond(request, refusal.message, refusal.status, refusal.code)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
