"""The one input boundary: a route receives its body and its query as typed models, or the
client gets a 400 that says what to fix.

A route calls ``read_body(request, Model)`` or ``read_query(request, Model)`` first thing, and
declares the same model with ``body_doc``/``query_doc`` in its decorator, which registers it
for the OpenAPI document (``install_openapi``): ``/docs`` and a schema-driven fuzzer see every
field with its bounds. (Plain calls rather than FastAPI dependencies: a dependency costs a
nested resolution per request, and a synchronous one a hop to the thread pool.) Bodies are
parsed here with orjson rather than by FastAPI, because ProcPlan's clients rely on its exact
messages (``Invalid JSON payload: ...``, ``JSON payload must be an object``, no body meaning
``{}``) and because orjson is strict where the standard library is lax (no ``NaN``, no lone
surrogates, bounded nesting).

The body's size is bounded before it is read (``api.guard``); everything after is bounded by
the models' field checks (``api.models.fields``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from procplan.api.models.fields import PROBLEM, Checked
from procplan.core.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)
_REF = "#/components/schemas/{model}"
_SCHEMAS: dict[str, dict[str, Any]] = {}  # every model a route reads, by name, for OpenAPI


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; no body is ``{}`` (ProcPlan's rule)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Invalid JSON payload: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest("JSON payload must be an object")
    return payload


def first_problem(errors: list[Any]) -> InvalidRequest:
    """The one refusal a client sees: an unknown field first (the most likely typo), else the
    first field in the model's order. Our own checks' messages and codes are kept verbatim."""
    unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
    error = (unknown or errors or [{}])[0]
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
    where = ".".join(loc)
    kind, message = error.get("type"), str(error.get("msg", "invalid request"))
    if kind == PROBLEM:
        code = str(error.get("ctx", {}).get("code", "invalid_request"))
        if len(loc) > 1:  # inside a list or object: say which entry (the field names itself)
            message = f"{'.'.join(loc[:-1])}: {message}"
        return InvalidRequest(message, code)
    if kind == "extra_forbidden":
        return InvalidRequest(f"unknown field '{where}'")
    if kind == "missing":
        return InvalidRequest(f"{where} is required")
    return InvalidRequest(f"{where}: {message}" if where else message)


def validated(model: type[M], data: Mapping[str, Any]) -> M:
    """``model`` from ``data``, or the ``InvalidRequest`` that names the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise first_problem(exc.errors()) from None


def checked(check: Checked, value: Any, field: str) -> Any:
    """One value (a path segment, a header) through a field check, outside any model: the
    same rule and message, as an ``InvalidRequest``."""
    try:
        return check.check(value, field)
    except PydanticCustomError as exc:
        context = exc.context or {}
        raise InvalidRequest(str(context.get("message")), str(context.get("code"))) from None


def _register(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, its nested models moved to the shared components."""
    schema = model.model_json_schema(ref_template=_REF)
    for name, nested in schema.pop("$defs", {}).items():
        _SCHEMAS[name] = nested
    _SCHEMAS[model.__name__] = schema
    return schema


async def read_body(request: Request, model: type[M]) -> M:
    """The request's JSON body as ``model`` (no body is ``{}``). Document the route with
    ``body_doc(model)``."""
    return validated(model, await json_object(request))


def body_doc(model: type[BaseModel], *, required: bool = False) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads ``read_body(request, model)``."""
    _register(model)
    content = {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}
    return {"requestBody": {"required": required, "content": content}}


def read_query(request: Request, model: type[M]) -> M:
    """The query string as ``model``. An empty value (``?limit=``) is the same as an absent
    one, which is what clients mean by it; repeated keys keep the last value. Document the
    route with ``query_doc(model)``."""
    params = {k: v for k, v in request.query_params.items() if v.strip()}
    return validated(model, params)


def query_doc(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads ``read_query(request, model)``: one
    parameter per field."""
    schema = _register(model)
    required = set(schema.get("required", ()))
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]
    return {"parameters": parameters}


def install_openapi(app: FastAPI) -> None:
    """Add the boundary's models to the generated OpenAPI document's components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document.setdefault("components", {}).setdefault("schemas", {}).update(_SCHEMAS)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
