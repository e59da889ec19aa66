"""``ProcPlanClient``: one server, one ``Transport``, the API's faces as composed parts.

The CLI, the TUI and tests talk to a server through this object: ``client.jobs``,
``client.nodes``, ``client.bookings``, ``client.compat`` (the ProcPlan-compatible routes),
``client.tenants`` and ``client.accounts``. Each part holds the same transport and nothing
else, so every request is built in one place and no part imports another (the old mixins and
their cycle are gone). The node agent has its own face, ``agent.AgentClient``, with the agent
token instead of a user's credential.

``transport_type`` is the one seam for callers that treat every answer alike: the CLI's
``DisplayClient`` swaps in a transport whose answers are terminal-safe.
"""

from __future__ import annotations

from typing import Any, ClassVar

from procplan.client.accounts import AccountsApi
from procplan.client.auth import Credential, current_user
from procplan.client.bookings import BookingsApi
from procplan.client.compat import CompatApi
from procplan.client.errors import ApiError, InvalidResponse
from procplan.client.jobs import JobsApi
from procplan.client.nodes import NodesApi
from procplan.client.notify import NotifyApi
from procplan.client.tenants import TenantsApi
from procplan.client.transport import OwnsTransport, Transport
from procplan.client.usage import UsageApi

JsonDict = dict[str, Any]


class ProcPlanClient(OwnsTransport):
    """Talks to one ProcPlan server; usable as a context manager to close the connection pool.

    ``credential``, ``discover`` and ``act_as`` are the transport's (see ``Transport``): by
    default the credential ``auth.resolve_credential`` finds, and nobody acted for.
    """

    transport_type: ClassVar[type[Transport]] = Transport

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        act_as: str | None = None,
        *,
        credential: Credential | None = None,
        discover: bool = True,
    ) -> None:
        self.transport = self.transport_type(
            base_url, timeout, act_as, credential=credential, discover=discover
        )
        self.jobs = JobsApi(self.transport)
        self.nodes = NodesApi(self.transport)
        self.bookings = BookingsApi(self.transport)
        self.compat = CompatApi(self.transport)
        self.tenants = TenantsApi(self.transport)
        self.accounts = AccountsApi(self.transport)
        self.notify = NotifyApi(self.transport)
        self.usage = UsageApi(self.transport)

    @property
    def act_as(self) -> str | None:
        return self.transport.act_as

    @property
    def credential(self) -> Credential | None:
        return self.transport.credential

    def health(self) -> JsonDict:
        """``GET /health``."""
        return self.transport.call("GET", "/health")

    def user_name(self) -> str:
        """The user "mine" means: the one acted for, else the server's answer to ``me``, else
        (a server too old for ``/me``, or nobody signed in) the local login name, which is
        whom a local server takes us for."""
        if self.act_as is not None:
            return self.act_as
        try:
            name = self.accounts.me().get("user")
        except (ApiError, InvalidResponse):
            name = None
        return name if isinstance(name, str) and name else current_user()
