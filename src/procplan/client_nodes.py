"""Node, GPU-history and job-log calls of ``ProcPlanClient`` (ADR 0006, ``/api/v1``).

A mixin like ``client_jobs``: ``ProcPlanClient`` inherits it and supplies the transport. Node
routes return the server's JSON as plain dicts. Job logs are raw bytes, not JSON, so
``job_logs`` sends its own request on the client's connection pool and reads the three
``X-Log-*``/``X-Job-State`` headers into a ``LogChunk``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx

from procplan.client_errors import error_from, format_time

JsonDict = dict[str, Any]
JobId = int | str
TimeArg = str | datetime | int

LOG_PAGE = 65536
"""Default (and the CLI's) page size for ``job_logs``: 64 KiB."""

HEADER_SIZE = "X-Log-Size"
HEADER_TRUNCATED = "X-Log-Truncated"
HEADER_STATE = "X-Job-State"


class LogChunk(NamedTuple):
    """One page of a job's stored log; unpacks as ``data, size, truncated, job_state``.

    ``size`` is every byte the server holds for the stream (not just this page), ``truncated``
    says the server stopped keeping bytes past its cap, ``job_state`` is the job's state when
    the page was read (``None`` if the server did not say).
    """

    data: bytes
    size: int
    truncated: bool
    job_state: str | None


def _segment(value: JobId) -> str:
    return quote(str(value), safe="")


def parse_log_headers(headers: Any, offset: int, data: bytes) -> LogChunk:
    """The ``LogChunk`` of an answer; tolerant of a missing or garbled header (a proxy may
    drop them): the size then counts what we have, ``truncated`` is false, the state unknown."""
    raw_size = headers.get(HEADER_SIZE)
    try:
        size = int(raw_size) if raw_size is not None else offset + len(data)
    except ValueError:
        size = offset + len(data)
    truncated = str(headers.get(HEADER_TRUNCATED) or "").strip().lower() in ("true", "1", "yes")
    state = headers.get(HEADER_STATE)
    return LogChunk(data, max(size, 0), truncated, state.strip() if state else None)


class NodesApi:
    """The node, history and log routes; mixed into ``ProcPlanClient``."""

    # Supplied by ``ProcPlanClient`` (declared for type checkers only).
    _object: Callable[..., JsonDict]
    send: Callable[..., httpx.Response]
    base_url: str

    def nodes(self) -> JsonDict:
        """``GET /api/v1/nodes`` → ``{"generated_at", "summary", "nodes"}``: every node with
        its state, agent, GPUs, latest readings, holder, flags and processes."""
        return self._object("GET", "/api/v1/nodes")

    def node(self, node_id: str) -> JsonDict:
        """``GET /api/v1/nodes/{id}``: one node object (404 ``unknown_node`` if unknown)."""
        return self._object("GET", f"/api/v1/nodes/{_segment(node_id)}")

    def node_history(
        self,
        node_id: str,
        metric: str = "utilization",
        start: TimeArg | None = None,
        end: TimeArg | None = None,
        step: int | None = None,
        agg: str | None = None,
    ) -> JsonDict:
        """``GET /api/v1/nodes/{id}/history`` → ``{"metric", "unit", "step", "series": [...]}``
        with one series of ``[instant, value]`` points per GPU; ``metric`` is one of
        ``utilization``, ``memory_used``, ``temperature``, ``power``; ``agg`` ``avg`` or
        ``max``. Unset arguments take the server's defaults."""
        params = {
            "metric": metric,
            "start": format_time(start) if start is not None else None,
            "end": format_time(end) if end is not None else None,
            "step": step,
            "agg": agg,
        }
        return self._object("GET", f"/api/v1/nodes/{_segment(node_id)}/history", params=params)

    def job_logs(
        self,
        job_id: JobId,
        stream: str = "stdout",
        offset: int = 0,
        limit: int = LOG_PAGE,
        run: int | None = None,
    ) -> LogChunk:
        """``GET /api/v1/jobs/{id}/logs``: up to ``limit`` bytes of ``stream`` from ``offset``.

        Refusals raise ``ApiError`` (404 for an unknown job) and transport failures
        ``ServerUnreachable``, exactly like the JSON routes.
        """
        params = {"stream": stream, "offset": offset, "limit": limit, "run": run}
        response = self.send(
            "GET",
            f"/api/v1/jobs/{_segment(job_id)}/logs",
            params=params,
            headers={"Accept": "application/octet-stream, application/json"},
        )
        if not response.is_success:
            raise error_from(response)
        return parse_log_headers(response.headers, offset, response.content)
