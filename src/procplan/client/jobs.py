"""The job routes (ADR 0005, ``/api/v1/jobs``): ``client.jobs``.

A part composed into ``ProcPlanClient``: it holds the client's ``Transport`` and nothing else,
so it cannot build a request any other way. Job answers come back typed (``answers.Job``,
parsed once) because three front ends read them; ``raw`` keeps each as sent. Job ids are
strings on the wire; callers may pass ints, which are sent as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from procplan.client.answers import (
    Job,
    JobPage,
    Lease,
    LogChunk,
    PriorityList,
    Submitted,
    parse_job,
    parse_job_page,
    parse_lease,
    parse_log_headers,
    parse_priority_list,
    parse_submitted,
)
from procplan.client.transport import WAIT_SLACK_S, Transport, segment

JobId = int | str
JOBS = "/api/v1/jobs"
PRIORITY = "/api/v1/queue/priority"

LOG_PAGE = 65536
"""Default (and the CLI's) page size for ``logs``: 64 KiB."""


class JobsApi:
    """Submit, list, read, wait for, renew, release, cancel jobs; read their logs."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def submit(self, body: Mapping[str, Any]) -> Submitted:
        """``POST /api/v1/jobs`` → ``{"job_id", "status", "message", "job"}`` (arrays add
        ``"job_ids"`` and ``"array_id"``). The body is sent as given: the server validates it."""
        return parse_submitted(self._transport.call("POST", JOBS, body=dict(body)))

    def list(self, **filters: str | int | None) -> JobPage:
        """``GET /api/v1/jobs`` → ``{"jobs", "total"}``; filters (``user``, ``tenant_id``,
        ``state`` — a comma list or ``active`` —, ``kind``, ``limit``, ``offset``) are ANDed."""
        return parse_job_page(self._transport.call("GET", JOBS, params=filters))

    def priority(self, **filters: str | int | None) -> PriorityList:
        """``GET /api/v1/queue/priority``: pending jobs in queue order with the parts of
        their effective priority (``sprio``); filters ``user``, ``tenant_id``, ``limit``."""
        return parse_priority_list(self._transport.call("GET", PRIORITY, params=filters))

    def get(self, job_id: JobId) -> Job:
        """``GET /api/v1/jobs/{id}``: the full job object."""
        return parse_job(self._transport.call("GET", f"{JOBS}/{segment(job_id)}"))

    def wait(self, job_id: JobId, version: int | None, timeout: float) -> Job:
        """``GET /api/v1/jobs/{id}/wait``: long-poll until the job differs from ``version``
        (state, reason, position or estimate) or ``timeout`` seconds pass; renews the lease.

        The HTTP read timeout of this one call is ``timeout`` plus a margin, so the server's
        own deadline always comes first.
        """
        params = {"timeout": timeout, "version": version}
        answer = self._transport.call(
            "GET",
            f"{JOBS}/{segment(job_id)}/wait",
            params=params,
            timeout=timeout + WAIT_SLACK_S,
        )
        return parse_job(answer)

    def heartbeat(self, job_id: JobId) -> Lease:
        """``POST /api/v1/jobs/{id}/heartbeat`` → ``{"state", "lease_expires_at",
        "preempt_at", "version"}``: renews the lease of a running interactive job."""
        return parse_lease(self._transport.call("POST", f"{JOBS}/{segment(job_id)}/heartbeat"))

    def release(self, job_id: JobId, exit_code: int) -> Job:
        """``POST /api/v1/jobs/{id}/release``: the command ended (0 → completed, else failed)."""
        path = f"{JOBS}/{segment(job_id)}/release"
        return parse_job(self._transport.call("POST", path, body={"exit_code": exit_code}))

    def cancel(self, job_id: JobId) -> Job | None:
        """``DELETE /api/v1/jobs/{id}``: withdraw a pending job or stop a running one; the
        job as it is now, or ``None`` when the answer carries none (the Go shape)."""
        answer = self._transport.call("DELETE", f"{JOBS}/{segment(job_id)}")
        return parse_job(answer) if isinstance(answer.get("job"), Mapping) else None

    def logs(
        self,
        job_id: JobId,
        stream: str = "stdout",
        offset: int = 0,
        limit: int = LOG_PAGE,
        run: int | None = None,
        rank: int = 0,
    ) -> LogChunk:
        """``GET /api/v1/jobs/{id}/logs``: up to ``limit`` bytes of ``stream`` from ``offset``
        (every run of a requeued job in order unless ``run`` names one; ``rank``: the node of
        a multi-node job).

        Raw bytes, not JSON: the page and the ``X-Log-*``/``X-Job-State`` headers become a
        ``LogChunk``. Refusals raise ``ApiError`` (404 for an unknown job) and transport
        failures ``ServerUnreachable``, exactly like the JSON routes.
        """
        params = {"stream": stream, "offset": offset, "limit": limit, "run": run}
        if rank:
            params["rank"] = rank
        response = self._transport.send(
            "GET",
            f"{JOBS}/{segment(job_id)}/logs",
            params=params,
            headers={"Accept": "application/octet-stream, application/json"},
        )
        self._transport.check(response)
        return parse_log_headers(response.headers, offset, response.content)
