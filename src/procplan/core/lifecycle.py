"""The job state machine: one transition table, and a check every state change goes through.

``pending → running → completed | failed | cancelled | preempted | lost``; a pending job can
also be cancelled (or fail to start), and a preempted or lost job can be requeued (back to
``pending``, batch jobs only: an interactive job's client has gone or been told to stop).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from procplan.core.errors import Conflict
from procplan.core.jobs import JobKind, JobState

_S = JobState

TRANSITIONS: Mapping[JobState, frozenset[JobState]] = MappingProxyType(
    {
        _S.PENDING: frozenset({_S.RUNNING, _S.CANCELLED, _S.FAILED}),
        _S.RUNNING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELLED, _S.PREEMPTED, _S.LOST}),
        _S.COMPLETED: frozenset(),
        _S.FAILED: frozenset(),
        _S.CANCELLED: frozenset(),
        _S.PREEMPTED: frozenset({_S.PENDING}),
        _S.LOST: frozenset({_S.PENDING}),
    }
)


class IllegalTransition(Conflict):
    """A state change the table does not allow (409: the job is not in a state for it)."""

    default_code = "illegal_transition"


def can_transition(current: JobState, new: JobState, kind: JobKind = JobKind.BATCH) -> bool:
    if new is JobState.PENDING and kind is JobKind.INTERACTIVE:
        return False
    return new in TRANSITIONS[current]


def check_transition(
    job_id: int, current: JobState, new: JobState, kind: JobKind = JobKind.BATCH
) -> JobState:
    """``new`` if the table allows ``current → new`` for this kind of job, else raise."""
    if not can_transition(current, new, kind):
        if current.is_finished and new is not JobState.PENDING:
            raise IllegalTransition(f"Job {job_id} is already {current.value}", code="job_finished")
        raise IllegalTransition(f"Job {job_id} cannot go from {current.value} to {new.value}")
    return new
