"""Freed GPUs are free: the hand-over after a job ends (issue #19) — pure.

When a job ends, its processes may still show in the next reading of its node while their
CUDA contexts are torn down (the reading was taken before the end reached the server, or
during the teardown). Such a process is the ended job's, not a foreign one: it is classified
``ending`` and its GPU is not foreign, so the first job in line keeps those GPUs.

The rule (``in_handover``): a report taken before ``ended_at + interval_s + resolution_s``
cannot flag a GPU of a job that ended at ``ended_at``; only a reading at least one interval
after the end can (``resolution_s`` absorbs the whole-second clock of the server). Beyond that
window, a process the agent itself marks ``ending`` (its own job's, within the agent's grace)
is still the job's, up to ``MAX_ENDING_S``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from procplan.core.node_usage import ClassifiedProcess, ProcessKind

CLOCK_RESOLUTION_S = 1.0  # the server's clock (``Instant``) counts whole seconds
MAX_ENDING_S = 30.0  # past this, no process of an ended job is excused, whoever says so


@dataclass(frozen=True, slots=True)
class EndedJob:
    """A job that ran on the node and ended at ``ended_at`` (server clock), on ``gpu_ids``."""

    job_id: int
    gpu_ids: frozenset[str]
    ended_at: float


def in_handover(
    ended_at: float,
    taken_at: float,
    interval_s: float,
    resolution_s: float = CLOCK_RESOLUTION_S,
) -> bool:
    """Whether a report taken at ``taken_at`` may still show the processes of a job that
    ended at ``ended_at``: it may unless it was taken a full reading interval (and the clock's
    resolution) after the end."""
    return taken_at < ended_at + interval_s + resolution_s


def settle_endings(
    classified: Sequence[ClassifiedProcess],
    ended: Iterable[EndedJob],
    taken_at: float,
    interval_s: float,
    previous: Mapping[int, int | None] | None = None,
    resolution_s: float = CLOCK_RESOLUTION_S,
) -> list[ClassifiedProcess]:
    """``classified`` with the processes of recently ended jobs as ``ending`` (not foreign).

    A process that ``classify`` took for a stray or an unbooked one is the ended job ``J``'s
    when the agent says so (``job_id``), or when the node's previous report attributed its PID
    to ``J`` (``previous``: PID → job id, ``None`` for processes that were nobody's), or when it
    is on a GPU ``J`` held and was not seen as somebody else's before. It is ``ending`` while
    the report is ``in_handover`` of ``J``'s end, or while the agent marks it ``ending``
    (within ``MAX_ENDING_S``). Jobs' and booking owners' processes are left as they are.
    """
    by_id = {e.job_id: e for e in ended}
    if not by_id:
        return list(classified)
    seen = previous or {}
    result = []
    for c in classified:
        job = None
        if c.kind in (ProcessKind.STRAY, ProcessKind.UNBOOKED):
            job = _ended_owner(c, by_id, seen)
        if job is not None and _excused(c, job, taken_at, interval_s, resolution_s):
            c = dataclasses.replace(c, kind=ProcessKind.ENDING, job_id=job.job_id)
        result.append(c)
    return result


def _ended_owner(
    c: ClassifiedProcess, by_id: Mapping[int, EndedJob], seen: Mapping[int, int | None]
) -> EndedJob | None:
    tagged = c.process.job_id
    if tagged is not None:
        return by_id.get(tagged)  # the agent knows whose it is
    if c.process.pid in seen:
        before = seen[c.process.pid]
        return None if before is None else by_id.get(before)
    on_gpu = [e for e in by_id.values() if c.gpu_id is not None and c.gpu_id in e.gpu_ids]
    return max(on_gpu, key=lambda e: e.ended_at) if on_gpu else None


def _excused(
    c: ClassifiedProcess, job: EndedJob, taken_at: float, interval_s: float, resolution_s: float
) -> bool:
    if in_handover(job.ended_at, taken_at, interval_s, resolution_s):
        return True
    return (
        c.process.ending
        and c.process.job_id == job.job_id
        and (taken_at < job.ended_at + MAX_ENDING_S)
    )


def attributions(processes: Iterable[tuple[int, str, int | None]]) -> dict[int, int | None]:
    """PID → the job a report attributed it to (``None``: nobody's), from ``(pid, kind,
    job_id)`` triples of a stored report; processes of jobs and ending jobs count as theirs."""
    mine = (ProcessKind.JOB.value, ProcessKind.ENDING.value, ProcessKind.STRAY.value)
    return {pid: job_id if kind in mine else None for pid, kind, job_id in processes}
