"""Requests of the calendar feed routes (``/api/v1/feeds``, ADR 0022)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FeedQuery(BaseModel):
    """``?token=``: the feed secret (calendar apps cannot send headers)."""

    model_config = ConfigDict(extra="ignore")

    token: str | None = None  # any length: a bad one is the same 404 as a wrong one
