"""Calendar feeds (issue #17, ADR 0022): a per-user secret that reads bookings as iCalendar.

Calendar apps fetch a URL and send no headers, so the secret rides in the URL. It is a
credential of its own kind (``feed``) in the credentials table: 256 random bits shown once,
stored as SHA-256 like API tokens. It proves nothing to the rest of the API (token checks
accept only ``token`` and ``session`` credentials), reads only bookings, which are public on
the calendar anyway, and is revoked by the user (or replaced: creating one revokes the
previous). A wrong, revoked or expired secret and a disabled user all read as "not found".
"""

from __future__ import annotations

import secrets

from procplan.core.identity import Credential
from procplan.core.model import Booking
from procplan.core.timeutil import DAY, Instant
from procplan.service.accounts import digest_of
from procplan.service.bookings import BookingService
from procplan.store.accounts_repo import AccountStore
from procplan.store.bookings_repo import BookingFilter

__all__ = ["FEED", "FEED_PREFIX", "FeedService"]

FEED = "feed"  # the credentials' kind
FEED_PREFIX = "ppf_"
PAST_S = 60 * DAY  # a feed shows bookings from this long ago ...
AHEAD_S = 400 * DAY  # ... to this far ahead
MAX_EVENTS = 5_000  # and at most this many (newest first)


class FeedService:
    """Creates, revokes and resolves feed secrets; reads what a feed shows."""

    def __init__(self, accounts: AccountStore, bookings: BookingService) -> None:
        self.accounts = accounts
        self.bookings = bookings

    def create(self, user: str) -> tuple[str, Credential]:
        """A new feed secret for ``user`` (returned once); the user's older ones stop working."""
        self.revoke(user)
        secret = FEED_PREFIX + secrets.token_urlsafe(32)
        now = self.bookings.clock.now()
        made = self.accounts.add_credential(
            user, FEED, "calendar feed", digest_of(secret), now, None
        )
        return secret, made

    def revoke(self, user: str) -> int:
        """Revoke every feed secret of ``user``; how many were live."""
        live = [c for c in self.accounts.credentials(user, (FEED,)) if not c.revoked]
        return sum(self.accounts.revoke(c.id) for c in live)

    def owner(self, secret: str | None) -> str | None:
        """The user a feed secret belongs to, or ``None`` (unknown, revoked, expired, another
        kind of credential, or a disabled user: the caller cannot tell which)."""
        if not secret or not secret.startswith(FEED_PREFIX) or len(secret) > 128:
            return None
        row = self.accounts.by_digest(digest_of(secret))
        if row is None:
            return None
        _pk, kind, expires_at, revoked, user, _role, _unix, disabled = row
        now = self.bookings.clock.now()
        expired = expires_at is not None and int(str(expires_at)) <= now
        if kind != FEED or revoked or disabled or expired:
            return None
        return str(user)

    def window(self) -> tuple[Instant, Instant]:
        now = self.bookings.clock.now()
        return now - PAST_S, now + AHEAD_S

    def user_bookings(self, user: str) -> list[Booking]:
        start, end = self.window()
        flt = BookingFilter(user=user, start=start, end=end, limit=MAX_EVENTS, offset=0)
        return self.bookings.list(flt)[0]

    def node_bookings(self, node_id: str) -> list[Booking]:
        """The node's bookings (``InvalidRequest`` for an unknown node)."""
        self.bookings.node(node_id)
        start, end = self.window()
        rows = self.bookings.bookings.window([node_id], start, end)
        return rows[-MAX_EVENTS:]
