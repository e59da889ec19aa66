"""The booking ledger held in memory, brought up to the last commit before every read.

Views read the ledger many times per second and each year-long grid needs every booking of a
node; fetching and decoding those rows was most of a request. Every booking write bumps
``meta.ledger_version`` and stamps the row with it (in commit order, see
``bookings_repo.next_ledger_version``), so a process catches up by reading one counter and,
when it moved, only the rows written since. Reads are therefore never staler than the last
committed write, across any number of server processes sharing the database.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Row

from procplan.core.model import Booking
from procplan.core.timeutil import Instant, in_range
from procplan.store.engine import Store
from procplan.store.rows import CHANGED_SINCE, row_to_booking
from procplan.store.tables import meta

LOG = logging.getLogger("procplan.store")
_LEDGER_VERSION = select(meta.c.value).where(meta.c.key == "ledger_version")


@dataclass(frozen=True, slots=True)
class _NodeIndex:
    """One node's bookings sorted by (start, id), immutable once built (readers share it)."""

    starts: tuple[Instant, ...]
    items: tuple[Booking, ...]
    max_span: int

    @classmethod
    def build(cls, members: Iterable[Booking]) -> _NodeIndex:
        items = tuple(sorted(members, key=_order))
        span = max((b.end - b.start for b in items), default=0)
        return cls(tuple(b.start for b in items), items, span)

    def changed(self, changes: Iterable[tuple[Booking | None, Booking | None]]) -> _NodeIndex:
        """A copy with each change applied in turn (its old version, if any, taken out and
        the new one, if any, put in), each found by bisection: a write changes a booking or two, and
        re-sorting every booking the node ever had on each write cost more than the write
        (issue #18). ``max_span`` may stay larger than needed after a change: it only widens
        ``overlapping``'s scan."""
        starts, items = list(self.starts), list(self.items)
        span = self.max_span
        for old, booking in changes:
            if old is not None:
                at = _position(starts, items, old)
                if at < len(items) and items[at].id == old.id:
                    del starts[at], items[at]
            if booking is None:
                continue
            at = _position(starts, items, booking)
            starts.insert(at, booking.start)
            items.insert(at, booking)
            span = max(span, booking.end - booking.start)
        return _NodeIndex(tuple(starts), tuple(items), span)

    def overlapping(self, start: Instant, end: Instant) -> list[Booking]:
        lo = bisect_left(self.starts, start - self.max_span)
        hi = bisect_left(self.starts, end)
        return [b for b in self.items[lo:hi] if b.end > start]


def _order(booking: Booking) -> tuple[Instant, int]:
    return booking.start, booking.id


def _position(starts: list[Instant], items: list[Booking], booking: Booking) -> int:
    """Where ``booking`` is, or goes, in (start, id) order."""
    at = bisect_left(starts, booking.start)
    while at < len(items) and items[at].start == booking.start and items[at].id < booking.id:
        at += 1
    return at


# Above this many changed bookings on one node, one sort beats bisecting each in.
_REBUILD_OVER = 64


_EMPTY = _NodeIndex((), (), 0)


class BookingMirror:
    """All bookings (any status) by node, synced from the database on demand."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._version = -1
        self._members: dict[str, dict[int, tuple[int, Booking]]] = {}
        # Per node: every booking (any status), and the active ones alone (what the rules and
        # the day views read: a busy calendar holds many more cancelled bookings than active
        # ones). Replaced together, as one tuple, so a reader gets both of one version.
        self._views: tuple[dict[str, _NodeIndex], dict[str, _NodeIndex]] = ({}, {})

    @property
    def version(self) -> int:
        return self._version

    def committed_version(self) -> int:
        """The database's ``ledger_version`` now (one indexed read): it moves on every
        committed booking write, from any process."""
        return int(self._store.peek(_LEDGER_VERSION))

    def window(self, node_ids: Sequence[str] | None, start: Instant, end: Instant) -> list[Booking]:
        """Bookings overlapping ``[start, end)`` as of the last commit: grouped by node (in the
        order asked, else any), each node's in ``(start, id)`` order."""
        return _overlapping(self.sync(), node_ids, start, end)

    def active_window(
        self, node_ids: Sequence[str] | None, start: Instant, end: Instant
    ) -> list[Booking]:
        """``window`` for active bookings only."""
        return _overlapping(self.sync_active(), node_ids, start, end)

    def sync(self) -> dict[str, _NodeIndex]:
        """Catch up with the database; return the (immutable) per-node indexes."""
        return self._synced()[0]

    def sync_active(self) -> dict[str, _NodeIndex]:
        """``sync``, the indexes of active bookings only."""
        return self._synced()[1]

    def _synced(self) -> tuple[dict[str, _NodeIndex], dict[str, _NodeIndex]]:
        current = self.committed_version()
        if current == self._version:
            return self._views
        rows = self._store.read_rows(CHANGED_SINCE, {"after": self._version})
        with self._lock:
            self._apply(rows, current)
            return self._views

    def _apply(self, rows: Sequence[Row[Any]], current: int) -> None:
        changes: dict[str, list[tuple[Booking | None, Booking]]] = {}
        newest = current
        for row in rows:
            version = int(row[-1])
            newest = max(newest, version)
            booking = row_to_booking(row[:-1])
            if not (in_range(booking.start) and in_range(booking.end)):
                # Written before instants were bounded: no view could render it.
                LOG.warning("booking %s lies outside years 1..9999: left out of views", booking.id)
                continue
            members = self._members.setdefault(booking.node_id, {})
            known = members.get(booking.id)
            if known is None or known[0] < version:
                members[booking.id] = (version, booking)
                old = None if known is None else known[1]
                changes.setdefault(booking.node_id, []).append((old, booking))
        if changes:
            self._views = self._updated(changes)
        self._version = max(self._version, newest)

    def _updated(
        self, changes: dict[str, list[tuple[Booking | None, Booking]]]
    ) -> tuple[dict[str, _NodeIndex], dict[str, _NodeIndex]]:
        index, active = dict(self._views[0]), dict(self._views[1])
        for node_id, changed in changes.items():
            current_index, current_active = index.get(node_id), active.get(node_id)
            if current_index is None or current_active is None or len(changed) > _REBUILD_OVER:
                members = [b for _, b in self._members[node_id].values()]
                index[node_id] = _NodeIndex.build(members)
                active[node_id] = _NodeIndex.build(b for b in members if b.is_active)
                continue
            index[node_id] = current_index.changed(changed)
            active_changes = [
                (_if_active(old), _if_active(new))
                for old, new in changed
                if _if_active(old) is not None or new.is_active
            ]
            if active_changes:
                active[node_id] = current_active.changed(active_changes)
        return index, active


def _if_active(booking: Booking | None) -> Booking | None:
    return booking if booking is not None and booking.is_active else None


def _overlapping(
    index: dict[str, _NodeIndex], node_ids: Sequence[str] | None, start: Instant, end: Instant
) -> list[Booking]:
    keys = index.keys() if node_ids is None else node_ids
    found: list[Booking] = []
    for node_id in keys:
        found.extend(index.get(node_id, _EMPTY).overlapping(start, end))
    return found
