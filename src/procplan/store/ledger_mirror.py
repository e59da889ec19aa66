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
        items = tuple(sorted(members, key=lambda b: (b.start, b.id)))
        span = max((b.end - b.start for b in items), default=0)
        return cls(tuple(b.start for b in items), items, span)

    def overlapping(self, start: Instant, end: Instant) -> list[Booking]:
        lo = bisect_left(self.starts, start - self.max_span)
        hi = bisect_left(self.starts, end)
        return [b for b in self.items[lo:hi] if b.end > start]


_EMPTY = _NodeIndex((), (), 0)


class BookingMirror:
    """All bookings (any status) by node, synced from the database on demand."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._version = -1
        self._members: dict[str, dict[int, tuple[int, Booking]]] = {}
        self._index: dict[str, _NodeIndex] = {}

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
        index = self.sync()
        keys = index.keys() if node_ids is None else node_ids
        found: list[Booking] = []
        for node_id in keys:
            found.extend(index.get(node_id, _EMPTY).overlapping(start, end))
        return found

    def sync(self) -> dict[str, _NodeIndex]:
        """Catch up with the database; return the (immutable) per-node indexes."""
        current = self.committed_version()
        if current == self._version:
            return self._index
        with self._store.read() as conn:
            rows = conn.execute(CHANGED_SINCE, {"after": self._version}).all()
        with self._lock:
            self._apply(rows, current)
            return self._index

    def _apply(self, rows: Sequence[Row[Any]], current: int) -> None:
        dirty: set[str] = set()
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
                dirty.add(booking.node_id)
        if dirty:
            index = dict(self._index)
            for node_id in dirty:
                index[node_id] = _NodeIndex.build(b for _, b in self._members[node_id].values())
            self._index = index
        self._version = max(self._version, newest)
