"""The audit log: who created, changed, released or cancelled what.

Entries are written by a background thread in batches, each riding along in the group commit
of the job writes under way (ADR 0004), so that a booking or a job submission pays a list
append rather than a second commit, and the audit never takes the write lock on its own
while the ledger is busy. A reader flushes
first, so an entry is visible to ``procplan audit`` as soon as the change it describes is
answered. What a kill -9 can lose: the entries of the last ``flush_s`` (0.2 s by default).
"""

from __future__ import annotations

import logging
import threading

from procplan.core.identity import AuditEntry, Principal, admin_acting
from procplan.service.clock import Clock
from procplan.store.accounts_repo import AccountStore
from procplan.store.write_batcher import WriteBatcher

LOG = logging.getLogger("procplan.audit")


class AuditLog:
    """``record`` queues an entry; ``entries`` reads them back, newest first."""

    def __init__(
        self,
        store: AccountStore,
        clock: Clock,
        flush_s: float = 0.2,
        writes: WriteBatcher | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.flush_s = flush_s
        self.writes = writes  # a ledger writer's group commit to ride along with
        self._pending: list[AuditEntry] = []
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(
        self, principal: Principal, action: str, target: str, owner: str | None, detail: str = ""
    ) -> None:
        actor = principal.actor or principal.name or "anonymous"
        entry = AuditEntry(
            self.clock.now(), actor, action, target, owner, admin_acting(principal, owner or ""),
            principal.via.value, detail,
        )  # fmt: skip
        with self._lock:
            self._pending.append(entry)
        if self._thread is None:
            self.flush()  # not started (tests, tools): write through
        else:
            self._wake.set()

    def flush(self) -> None:
        with self._flushing:
            with self._lock:
                batch, self._pending = self._pending, []
            try:
                self.store.record(batch, self.writes)
            except Exception:
                with self._lock:  # keep them for the next try
                    self._pending[:0] = batch
                raise

    def entries(self, user: str | None, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
        self.flush()
        return self.store.audit(user, limit, offset)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="procplan-audit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._stop.wait(self.flush_s)  # gather a batch
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the store is down: keep the entries for the next try
                LOG.exception("could not write the audit log")
