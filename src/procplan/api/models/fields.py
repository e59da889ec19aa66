"""Field checks of the input boundary, used as ``Annotated`` metadata::

    gpu_count: Annotated[int | None, Integer(0, MAX_GPUS)] = None

Each checks one JSON value the way ProcPlan always has (strict integers, ISO instants, names
without control characters) and documents itself in the OpenAPI schema with its real bounds, so
a schema-driven fuzzer reaches every limit. Every refusal is a ``problem``: a pydantic error
whose message reaches the client verbatim (``api.boundary`` turns the first one into the 400).
Checks run before pydantic's own, so the messages are ours; JSON ``null`` means "not given"
where the annotation allows ``None`` (Go clients send nulls for unset fields), and is refused
with the check's own message where it does not.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from procplan.core.text import name_problem, text_problem
from procplan.core.timeutil import Instant, parse_instant

PROBLEM = "procplan"  # the error type whose message is the client's message, verbatim

# Storage bounds: SQLite INTEGER and PostgreSQL BIGINT hold int64; PostgreSQL INTEGER int32.
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
MAX_NAME = 128  # user, tenant, node, GPU and GPU-kind columns
MAX_LABEL = 256  # booking label, job name, host and e-mail columns
MAX_TEXT = 65_536  # one free-text value (a command argument, a script, a path, an env value)
MAX_ITEMS = 4096  # entries of a list or object in a request (command arguments, env)
MAX_TIMESTAMP = 64  # characters of an ISO 8601 timestamp; longer is not a timestamp
_INT_TEXT = re.compile(r"^\s*[+-]?\d{1,30}\s*$")


def problem(message: str, code: str = "invalid_request") -> PydanticCustomError:
    """A refusal whose ``message`` (and machine ``code``) reaches the client as is; braces in
    the message are safe."""
    return PydanticCustomError(PROBLEM, "{message}", {"message": message, "code": code})


def as_int(value: object) -> int | None:
    """An integer from JSON: an int or an integer string (surrounding blanks allowed); never
    a bool or a float. ``None`` when ``value`` is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_TEXT.match(value):
        return int(value)
    return None


def _allows_none(source: Any) -> bool:
    origin = get_origin(source)
    return (origin is Union or origin is UnionType) and NoneType in get_args(source)


class Checked:
    """Base of the field checks: ``check`` returns the field's final value or raises a
    ``problem``; ``schema`` is what OpenAPI shows (``null`` added when the field allows it)."""

    def check(self, value: Any, field: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        nullable = _allows_none(source)

        def run(value: Any, info: ValidationInfo) -> Any:
            if value is None and nullable:
                return None
            return self.check(value, info.field_name or "value")

        return core_schema.with_info_before_validator_function(run, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        inner: Any = schema.get("schema", {})
        if inner.get("type") == "nullable":
            return {"anyOf": [self.schema(), {"type": "null"}]}
        return self.schema()


@dataclass(frozen=True, slots=True)
class Integer(Checked):
    """An integer in ``[lo, hi]``; the default message names the field and the range. An
    integer string (``"2"``) counts too unless ``strings`` is off."""

    lo: int
    hi: int
    message: str | None = None
    strings: bool = True

    def check(self, value: Any, field: str) -> int:
        number = as_int(value) if self.strings or not isinstance(value, str) else None
        if number is None or not self.lo <= number <= self.hi:
            raise problem(
                self.message or f"{field} must be an integer between {self.lo} and {self.hi}"
            )
        return number

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.lo, "maximum": self.hi}


@dataclass(frozen=True, slots=True)
class Number(Checked):
    """A finite JSON number in ``[lo, hi]`` (ints and floats; not bools; a numeric string
    only when ``strings`` is on, as in a query string)."""

    lo: float
    hi: float
    strings: bool = False

    def check(self, value: Any, field: str) -> float:
        if self.strings and isinstance(value, str) and len(value) <= 40:
            with contextlib.suppress(ValueError):
                value = float(value)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or not self.lo <= value <= self.hi:
            raise problem(f"{field} must be a number between {self.lo:g} and {self.hi:g}")
        return float(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": self.lo, "maximum": self.hi}


@dataclass(frozen=True, slots=True)
class Flag(Checked):
    """``true`` or ``false``: never 0/1 or strings."""

    def check(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            raise problem(f"{field} must be true or false")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


def checked_text(value: str, field: str, max_len: int, *, name: bool) -> str:
    """``value`` if within ``max_len`` and of the allowed characters (``name``: no control
    characters at all; otherwise no NUL and no lone surrogate), else a problem."""
    if len(value) > max_len:
        raise problem(f"{field} must be at most {max_len} characters")
    why = name_problem(value) if name else text_problem(value)
    if why is not None:
        raise problem(f"{field} {why}")
    return value


@dataclass(frozen=True, slots=True)
class Name(Checked):
    """A name: a string, surrounding blanks stripped, printable characters only. Empty (after
    the strip) is refused unless ``empty_ok``; ``message`` replaces the not-a-string error."""

    max_len: int = MAX_NAME
    empty_ok: bool = False
    message: str | None = None

    def check(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise problem(self.message or f"{field} must be a string")
        stripped = checked_text(value.strip(), field, self.max_len, name=True)
        if not stripped and not self.empty_ok:
            raise problem(f"{field} must not be empty")
        return stripped

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_len, "pattern": r"^[^\x00-\x1f\x7f]*$"}


@dataclass(frozen=True, slots=True)
class Text(Checked):
    """Free text: a string without NUL or lone surrogates, at most ``max_len`` characters
    (surrounding blanks stripped unless ``strip`` is off)."""

    max_len: int = MAX_TEXT
    strip: bool = True

    def check(self, value: Any, field: str) -> str:
        if not isinstance(value, str):
            raise problem(f"{field} must be a string")
        text = value.strip() if self.strip else value
        return checked_text(text, field, self.max_len, name=False)

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_len}


@dataclass(frozen=True, slots=True)
class Timestamp(Checked):
    """An ISO 8601 instant (anything ``datetime.fromisoformat`` reads; naive is UTC), in years
    1..9999 once its offset is applied, as an ``Instant``. The message is ``fromisoformat``'s
    after ``prefix`` (default: the field name and a colon)."""

    prefix: str | None = None

    def check(self, value: Any, field: str) -> Instant:
        lead = f"{field}: " if self.prefix is None else self.prefix
        if isinstance(value, str) and len(value) > MAX_TIMESTAMP:
            raise problem(f"{lead}a timestamp has at most {MAX_TIMESTAMP} characters")
        try:
            return parse_instant(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise problem(f"{lead}{exc}") from None

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "maxLength": MAX_TIMESTAMP}


@dataclass(frozen=True, slots=True)
class Strings(Checked):
    """An array of strings (``null`` is the empty array): free text, or with ``names`` names
    (ids: stripped, printable, not empty)."""

    max_items: int = MAX_ITEMS
    item_len: int = MAX_TEXT
    names: bool = False

    def check(self, value: Any, field: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise problem(f"{field} must be an array of strings")
        if len(value) > self.max_items:
            raise problem(f"{field} must have at most {self.max_items} entries")
        if self.names:
            name = Name(self.item_len)
            return [name.check(item, field) for item in value]
        return [checked_text(item, field, self.item_len, name=False) for item in value]

    def schema(self) -> dict[str, Any]:
        item = {"type": "string", "maxLength": self.item_len}
        return {"type": "array", "items": item, "maxItems": self.max_items}


@dataclass(frozen=True, slots=True)
class StringMap(Checked):
    """An object of string values, order kept (environment variables); ``null`` is empty."""

    max_items: int = MAX_ITEMS
    value_len: int = MAX_TEXT

    def check(self, value: Any, field: str) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise problem(f"{field} must be an object of string values")
        if len(value) > self.max_items:
            raise problem(f"{field} must have at most {self.max_items} entries")
        return tuple(
            (
                checked_text(key, f"{field} name", MAX_NAME, name=True),
                checked_text(item, field, self.value_len, name=False),
            )
            for key, item in value.items()
        )

    def schema(self) -> dict[str, Any]:
        values = {"type": "string", "maxLength": self.value_len}
        return {"type": "object", "additionalProperties": values, "maxProperties": self.max_items}


@dataclass(frozen=True, slots=True)
class Parsed(Checked):
    """A value read by a domain parser: ``parse`` returns it or raises ``ValueError`` with the
    client's message (``Priority.parse``, ``parse_priority``); ``shape`` is its JSON schema."""

    parse: Callable[[Any], Any]
    shape: Mapping[str, Any]
    code: str = "invalid_request"

    def check(self, value: Any, field: str) -> Any:
        try:
            return self.parse(value)
        except ValueError as exc:
            raise problem(str(exc), self.code) from None

    def schema(self) -> dict[str, Any]:
        return dict(self.shape)
