"""The node agent's routes (ADR 0006, ``/api/v1/agents``): ``AgentClient``.

The agent is not a person: it proves itself with the cluster's agent token
(``Authorization: Bearer <token>``) and calls only these five routes, so its client composes
its own ``Transport`` (never a user's token from the environment or ``procplan login``) and
carries none of the user-facing parts. Failures map exactly as in the rest of the client:
``ApiError`` (refused, with the server's ``code``), ``ServerUnreachable``, ``InvalidResponse``;
a log chunk at the wrong offset raises ``OffsetMismatch``, which carries the size the server
has. Answers stay plain dicts: ``agent.protocol`` reads them into its own messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from procplan.client.auth import Credential
from procplan.client.errors import ApiError, error_from
from procplan.client.transport import WAIT_SLACK_S, OwnsTransport, Transport, Verify, segment

JsonDict = dict[str, Any]
AGENTS = "/api/v1/agents"
TOKEN_ENV = "PROCPLAN_AGENT_TOKEN"


class OffsetMismatch(ApiError):
    """409 ``offset_mismatch``: the server has ``size`` bytes of that stream, not ``offset``."""

    def __init__(self, status: int, message: str, size: int) -> None:
        super().__init__(status, message, "offset_mismatch")
        self.size = size


class AgentClient(OwnsTransport):
    """A client that authenticates as a node agent; usable as a context manager."""

    def __init__(
        self, base_url: str, token: str, timeout: float = 10.0, *, verify: Verify = True
    ) -> None:
        self.transport = Transport(
            base_url, timeout=timeout, credential=Credential(token, source="agent"), verify=verify
        )

    def agent_register(self, body: Mapping[str, Any]) -> JsonDict:
        """``POST /api/v1/agents/register`` → ``{"node_id", "session", "interval_s", ...}``."""
        return self.transport.call("POST", f"{AGENTS}/register", body=dict(body))

    def agent_heartbeat(self, node_id: str, body: Mapping[str, Any]) -> JsonDict:
        """``POST /api/v1/agents/{node}/heartbeat`` (409 ``unknown_session``: register again)."""
        path = f"{AGENTS}/{segment(node_id)}/heartbeat"
        return self.transport.call("POST", path, body=dict(body))

    def agent_jobs(self, node_id: str, session: str, version: str | None, wait: float) -> JsonDict:
        """``GET /api/v1/agents/{node}/jobs``: the long poll for the node's desired jobs; the
        read timeout is ``wait`` plus a margin, so the server's own deadline comes first."""
        params = {"session": session, "version": version, "wait": wait}
        return self.transport.call(
            "GET",
            f"{AGENTS}/{segment(node_id)}/jobs",
            params=params,
            timeout=wait + WAIT_SLACK_S,
        )

    def agent_events(
        self, node_id: str, session: str, events: Sequence[Mapping[str, Any]]
    ) -> JsonDict:
        """``POST /api/v1/agents/{node}/events`` → ``{"results": [...]}`` (idempotent)."""
        body = {"session": session, "events": [dict(e) for e in events]}
        return self.transport.call("POST", f"{AGENTS}/{segment(node_id)}/events", body=body)

    def agent_ship_log(
        self,
        node_id: str,
        session: str,
        job_id: int,
        run: int,
        stream: str,
        offset: int,
        data: bytes,
        rank: int = 0,
    ) -> JsonDict:
        """``POST /api/v1/agents/{node}/jobs/{job}/logs?session=&run=&stream=&offset=[&rank=]``
        with the raw bytes → ``{"size", "truncated"}``; ``OffsetMismatch`` when the server
        holds a different size. ``rank``: the node's rank in a multi-node job."""
        path = f"{AGENTS}/{segment(node_id)}/jobs/{segment(job_id)}/logs"
        params: dict[str, str | int] = {
            "session": session, "run": run, "stream": stream, "offset": offset,
        }  # fmt: skip
        if rank:
            params["rank"] = rank
        response = self.transport.send(
            "POST",
            path,
            params=params,
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if not response.is_success:
            error = error_from(response)
            size = _size_of(response.content) if error.code == "offset_mismatch" else None
            if size is not None:
                raise OffsetMismatch(error.status, error.message, size)
            raise error
        answer = self.transport.decode(response, path)
        return answer if isinstance(answer, dict) else {}


def _size_of(content: bytes) -> int | None:
    """The ``size`` of an ``offset_mismatch`` refusal's body, if it has a whole number."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    size = body.get("size") if isinstance(body, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) else None
