"""Request bodies of the notification routes (issue #14)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from procplan.api.models.fields import Name


class ChannelCreate(BaseModel):
    """``POST /api/v1/notify/channels``: an apprise URL, the events it wants ("*" or a comma
    list of kinds or families such as "job"), a label; ``cluster`` (admins) for everyone's."""

    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=3, max_length=2000)]
    events: Annotated[str, Field(max_length=1000)] = "*"
    label: Annotated[str, Name(128, empty_ok=True)] = ""
    cluster: bool = False
