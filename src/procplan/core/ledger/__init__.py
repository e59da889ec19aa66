"""The ledger: its rules (``rules.judge``, written once) and its per-GPU interval index.

Every conflict check, availability view, placement and report reads this package
(DESIGN.md, "One ledger")."""

from procplan.core.ledger.index import Ledger, select_free_gpus
from procplan.core.ledger.nextfree import HORIZON_S, BookingConflict, Slot, next_free
from procplan.core.ledger.rules import (
    Ask,
    Hold,
    Holder,
    Preempted,
    Preview,
    Refusal,
    Verdict,
    Want,
    judge,
    preempted_jobs,
)

__all__ = [
    "HORIZON_S",
    "Ask",
    "BookingConflict",
    "Hold",
    "Holder",
    "Ledger",
    "Preempted",
    "Preview",
    "Refusal",
    "Slot",
    "Verdict",
    "Want",
    "judge",
    "next_free",
    "preempted_jobs",
    "select_free_gpus",
]
