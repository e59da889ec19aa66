"""Requests of the ProcPlan-compatible routes (COMPAT.md section 1), with ProcPlan's messages.

ProcPlan checked its inputs in a fixed order and its clients know the first message it gave;
the models keep that order: presence checks run before the fields (``mode="before"``), then
the fields in declaration order. Loose spots of ProcPlan stay where clients depend on them
(ids may be strings or integers; a label is whatever ``str()`` makes of it); everything gets
an upper bound it never had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from procplan.api.models.fields import (
    MAX_ITEMS,
    MAX_LABEL,
    MAX_NAME,
    MAX_TIMESTAMP,
    Checked,
    Integer,
    Name,
    Parsed,
    problem,
)
from procplan.core.model import Priority
from procplan.core.timeutil import Instant, parse_instant

ANY_INT = 10**30 - 1  # as many digits as ``as_int`` reads
_ID_SCHEMA = {"anyOf": [{"type": "string", "maxLength": MAX_NAME}, {"type": "integer"}]}
_RAW_TIME = {"type": "string", "format": "date-time", "maxLength": MAX_TIMESTAMP}


@dataclass(frozen=True, slots=True)
class Ids(Checked):
    """An array of ids, strings or integers (ProcPlan's clients send both), as strings."""

    not_array: str
    bad_item: str

    def check(self, value: Any, field: str) -> list[str]:
        if not isinstance(value, list):
            raise problem(self.not_array)
        if len(value) > MAX_ITEMS:
            raise problem(f"'{field}' must have at most {MAX_ITEMS} ids")
        ids: list[str] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise problem(self.bad_item)
            text = str(item)
            if len(text) > MAX_NAME:
                raise problem(self.bad_item)
            ids.append(text)
        return ids

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": _ID_SCHEMA, "maxItems": MAX_ITEMS}


@dataclass(frozen=True, slots=True)
class Loose(Checked):
    """Any JSON scalar as its ``str()`` (ProcPlan's ``str(payload.get(...) or "")``), bounded;
    ``shape`` is what OpenAPI shows (the type clients are meant to send)."""

    max_len: int
    shape: Mapping[str, Any]
    too_long: str | None = None

    def check(self, value: Any, field: str) -> str:
        text = "" if value is None or value is False else str(value)
        if len(text) > self.max_len:
            raise problem(self.too_long or f"'{field}' must be at most {self.max_len} characters")
        return text

    def schema(self) -> dict[str, Any]:
        return dict(self.shape)


def _window(start: str | None, end: str | None, prefix: str = "") -> tuple[Instant, Instant] | None:
    """Both instants when both are given (ProcPlan's rule), else ``None``: the default window."""
    if not (start and end):
        return None
    try:
        return parse_instant(start), parse_instant(end)
    except ValueError as exc:
        raise problem(f"{prefix}{exc}") from None


class _Window(BaseModel):
    """``start``/``end`` (both, or the default window) and ``granularity`` of a view."""

    model_config = ConfigDict(extra="ignore")

    start: Annotated[str | None, Loose(MAX_TIMESTAMP, _RAW_TIME, "start is not a timestamp")] = None
    end: Annotated[str | None, Loose(MAX_TIMESTAMP, _RAW_TIME, "end is not a timestamp")] = None
    granularity: Annotated[str | None, Loose(16, {"type": "string", "enum": ["hour", "day"]})] = (
        Field(default=None, description="hour (default) or day, any case")
    )

    _span: tuple[Instant, Instant] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _parse_window(self) -> _Window:
        self._span = _window(self.start, self.end)
        return self

    def window(self) -> tuple[Instant, Instant] | None:
        """The asked window, or ``None`` for the default one."""
        return self._span


class AvailabilityQuery(_Window):
    """``GET /api/availability``: one node's grid; no ``start``/``end`` = the default window."""

    node_id: Annotated[str, Name(MAX_NAME)]

    @model_validator(mode="before")
    @classmethod
    def _node_first(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("node_id"):
            raise problem("Query parameter 'node_id' is required")
        return data


class AvailabilityBulkBody(_Window):
    """``POST /api/availability_bulk``: several nodes (all when ``node_ids`` is absent), each
    once, in the order first asked for."""

    node_ids: Annotated[
        list[str] | None,
        Ids(
            "'node_ids' must be an array of ids when provided",
            "'node_ids' must be an array of ids when provided",
        ),
    ] = None


class BookBody(BaseModel):
    """``POST /api/book``: whole hours; GPUs by id or by count."""

    model_config = ConfigDict(extra="ignore")

    node_id: Annotated[
        str,
        Loose(MAX_NAME, _ID_SCHEMA, f"Unknown node id (ids have at most {MAX_NAME} characters)"),
    ]
    start: Annotated[str, Loose(MAX_TIMESTAMP, _RAW_TIME, "Invalid timestamp: start too long")]
    end: Annotated[str, Loose(MAX_TIMESTAMP, _RAW_TIME, "Invalid timestamp: end too long")]
    user_label: Annotated[
        str | None,
        Loose(MAX_LABEL, {"type": "string", "maxLength": MAX_LABEL}, "User label is too long"),
    ] = None
    gpu_ids: Annotated[
        list[str] | None,
        Ids("'gpu_ids' must be an array when provided", "'gpu_ids' must be an array of GPU ids"),
    ] = None
    gpu_count: Annotated[
        int | None, Integer(-ANY_INT, ANY_INT, message="'gpu_count' must be an integer")
    ] = None
    priority: Annotated[
        Priority | None,
        Parsed(Priority.parse, {"type": "string", "enum": ["low", "medium", "high"]}),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _required_first(cls, data: Any) -> Any:
        if isinstance(data, dict) and not all(data.get(k) for k in ("node_id", "start", "end")):
            raise problem("Fields 'node_id', 'start', and 'end' are required")
        return data

    _span: tuple[Instant, Instant] = PrivateAttr(default=(0, 0))

    @model_validator(mode="after")
    def _parse_interval(self) -> BookBody:
        window = _window(self.start, self.end, "Invalid timestamp: ")
        assert window is not None  # both are required
        self._span = window
        return self

    def interval(self) -> tuple[Instant, Instant]:
        return self._span


class MarkDoneBody(BaseModel):
    """``POST /api/mark_done``: release a booking early."""

    model_config = ConfigDict(extra="ignore")

    # Any integer: one outside the stored range is simply a booking that does not exist (404).
    booking_id: Annotated[
        int, Integer(-ANY_INT, ANY_INT, message="'booking_id' must be an integer")
    ]

    @model_validator(mode="before")
    @classmethod
    def _required_first(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("booking_id") is None:
            raise problem("'booking_id' is required")
        return data
