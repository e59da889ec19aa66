"""The node agent's HTTP routes (ADR 0006), on top of ``ProcPlanClient``.

``AgentClient`` is a ``ProcPlanClient`` that sends the cluster's agent token
(``Authorization: Bearer <token>``) on every request and adds the five agent calls. Failures
map exactly as in the rest of the client: ``ApiError`` (refused, with the server's ``code``),
``ServerUnreachable``, ``InvalidResponse``; a log chunk at the wrong offset raises
``OffsetMismatch``, which carries the size the server has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from procplan.client import ApiError, InvalidResponse, ProcPlanClient
from procplan.client_auth import Credential
from procplan.client_errors import error_from
from procplan.client_jobs import WAIT_SLACK_S, _segment

JsonDict = dict[str, Any]
AGENTS = "/api/v1/agents"
TOKEN_ENV = "PROCPLAN_AGENT_TOKEN"


class OffsetMismatch(ApiError):
    """409 ``offset_mismatch``: the server has ``size`` bytes of that stream, not ``offset``."""

    def __init__(self, status: int, message: str, size: int) -> None:
        super().__init__(status, message, "offset_mismatch")
        self.size = size


class AgentClient(ProcPlanClient):
    """A client that authenticates as a node agent."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        # Only the cluster's agent token: never a user's token from the environment or
        # ``procplan login`` (the agent is not acting as the user who started it).
        super().__init__(base_url, timeout=timeout, credential=Credential(token, source="agent"))

    def agent_register(self, body: Mapping[str, Any]) -> JsonDict:
        """``POST /api/v1/agents/register`` → ``{"node_id", "session", "interval_s", ...}``."""
        return self._object("POST", f"{AGENTS}/register", body=dict(body))

    def agent_heartbeat(self, node_id: str, body: Mapping[str, Any]) -> JsonDict:
        """``POST /api/v1/agents/{node}/heartbeat`` (409 ``unknown_session``: register again)."""
        return self._object("POST", f"{AGENTS}/{_segment(node_id)}/heartbeat", body=dict(body))

    def agent_jobs(self, node_id: str, session: str, version: str | None, wait: float) -> JsonDict:
        """``GET /api/v1/agents/{node}/jobs``: the long poll for the node's desired jobs; the
        read timeout is ``wait`` plus a margin, so the server's own deadline comes first."""
        params = {"session": session, "version": version, "wait": wait}
        return self._object(
            "GET",
            f"{AGENTS}/{_segment(node_id)}/jobs",
            params=params,
            timeout=wait + WAIT_SLACK_S,
        )

    def agent_events(
        self, node_id: str, session: str, events: Sequence[Mapping[str, Any]]
    ) -> JsonDict:
        """``POST /api/v1/agents/{node}/events`` → ``{"results": [...]}`` (idempotent)."""
        body = {"session": session, "events": [dict(e) for e in events]}
        return self._object("POST", f"{AGENTS}/{_segment(node_id)}/events", body=body)

    def agent_ship_log(
        self,
        node_id: str,
        session: str,
        job_id: int,
        run: int,
        stream: str,
        offset: int,
        data: bytes,
    ) -> JsonDict:
        """``POST /api/v1/agents/{node}/jobs/{job}/logs?session=&run=&stream=&offset=`` with
        the raw bytes → ``{"size", "truncated"}``; ``OffsetMismatch`` when the server holds a
        different size."""
        path = f"{AGENTS}/{_segment(node_id)}/jobs/{_segment(job_id)}/logs"
        params: dict[str, str | int] = {
            "session": session, "run": run, "stream": stream, "offset": offset,
        }  # fmt: skip
        response = self.send(
            "POST",
            path,
            params=params,
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if not response.is_success:
            error = error_from(response)
            size = _size_of(response) if error.code == "offset_mismatch" else None
            if size is not None:
                raise OffsetMismatch(error.status, error.message, size)
            raise error
        if not response.content:
            return {}
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise InvalidResponse(self.base_url + path, f"body is not JSON ({exc})") from exc
        return answer if isinstance(answer, dict) else {}


def _size_of(response: httpx.Response) -> int | None:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    size = body.get("size") if isinstance(body, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) else None
