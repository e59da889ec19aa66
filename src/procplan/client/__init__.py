"""Typed synchronous HTTP client for a ProcPlan server (``from procplan.client import …``).

One transport (``transport``: URL, credential from ``auth``, JSON, error mapping from
``errors``) under composed parts, one per face of the API: ``jobs``, ``nodes``, ``bookings``,
``compat``, ``tenants``, ``accounts`` on ``ProcPlanClient``, and the node agent's own
``AgentClient`` (``agent``). Job answers are parsed once into typed objects (``answers``);
the rest stay the server's JSON. Modules import only the ones below them: ``errors`` and
``auth`` at the bottom, then ``transport``, ``answers``, the parts, and ``procplan_client``.

This module only re-exports the names callers use, so ``procplan.client`` stays one import.
"""

from procplan.client.answers import Job, JobPage, Lease, LogChunk, Submitted, parse_job
from procplan.client.auth import current_user
from procplan.client.errors import (
    ApiError,
    ClientError,
    InvalidResponse,
    ServerUnreachable,
    TimeArg,
    format_time,
)
from procplan.client.jobs import LOG_PAGE
from procplan.client.procplan_client import ProcPlanClient
from procplan.client.transport import DEFAULT_URL, URL_ENV, USER_HEADER, resolve_url, server_urls

__all__ = [
    "DEFAULT_URL",
    "LOG_PAGE",
    "URL_ENV",
    "USER_HEADER",
    "ApiError",
    "ClientError",
    "InvalidResponse",
    "Job",
    "JobPage",
    "Lease",
    "LogChunk",
    "ProcPlanClient",
    "ServerUnreachable",
    "Submitted",
    "TimeArg",
    "current_user",
    "format_time",
    "parse_job",
    "resolve_url",
    "server_urls",
]
