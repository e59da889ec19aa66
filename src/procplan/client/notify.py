"""Notification channels (issue #14, ``/api/v1/notify``): ``client.notify``.

A part composed into ``ProcPlanClient`` over its ``Transport``. Answers stay plain dicts; a
channel's URL comes back redacted (it may hold a secret)."""

from __future__ import annotations

from typing import Any

from procplan.client.transport import Transport

JsonDict = dict[str, Any]
BASE = "/api/v1/notify/channels"


class NotifyApi:
    """Add, list, test and remove notification channels."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def channels(self) -> JsonDict:
        """``GET`` → ``{"channels": [...], "total"}``: yours (an admin's: everyone's)."""
        return self._transport.call("GET", BASE)

    def add(self, url: str, events: str = "*", label: str = "", cluster: bool = False) -> JsonDict:
        body = {"url": url, "events": events, "label": label, "cluster": cluster}
        return self._transport.call("POST", BASE, body=body)

    def test(self, channel_id: int) -> JsonDict:
        """Send a test message now; the answer says whether it went (``sent``, ``error``)."""
        return self._transport.call("POST", f"{BASE}/{int(channel_id)}/test")

    def remove(self, channel_id: int) -> JsonDict:
        return self._transport.call("DELETE", f"{BASE}/{int(channel_id)}")
