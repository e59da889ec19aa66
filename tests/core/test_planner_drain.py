"""No starvation behind open-ended jobs (issue #15 item 4, ADR 0015).

The issue's scenario: open-ended jobs hold a node, a 2-GPU job on it has just ended, an 8-GPU
job waits first in line, and a 1-GPU job arriving a moment later would start on a freed GPU,
and the next one on the next, so the wide job never gets the node. The wide job has no
estimated start (the jobs in its way have no time limit), so before ADR 0015 it had no
reservation either. Now the first blocked job with no known start drains the placement the
fewest open-ended jobs hold, once it has waited ``drain_after_s``: nothing new starts there.
"""

from __future__ import annotations

from dataclasses import replace

from planner_kit import NOW, POLICY, job, run, running, snap, started, topo

from procplan.core.jobs import Blockers, PendingInfo, Reason, Snapshot

EIGHT = [f"n0-g{i}" for i in range(8)]
OPEN = {"time_limit_s": None}


def scenario(*, small_limit: int | None = None) -> Snapshot:
    held = [running(50, EIGHT[:6], started_at=NOW - 600, **OPEN)]  # the 2-GPU job just ended
    wide = job(1, gpu_count=8, **OPEN)
    small = job(2, time_limit_s=small_limit)  # half a second later, in whole seconds: 1 s
    return snap(topo(8), [wide, small], held)


def test_the_wide_job_is_first_in_line_and_keeps_its_place() -> None:
    state = scenario()
    result = run(state, policy=replace(POLICY, preemption=False))
    assert started(result) == {}  # the 1-GPU job does not take a freed GPU
    assert result.pending[1] == PendingInfo(Reason.RESOURCES, 1, None, Blockers(jobs=(50,)))
    # A time-limited small job would not backfill there either: the wide job's start is
    # unknown, so any job on those GPUs might be what delays it.
    state = scenario(small_limit=60)
    assert started(run(state, policy=replace(POLICY, preemption=False))) == {}


def test_before_the_bounded_wait_the_small_job_may_pass() -> None:
    state = scenario()
    patient = replace(POLICY, preemption=False, drain_after_s=3600)  # waited 999 s so far
    assert started(run(state, policy=patient)) == {2: ("n0-g6",)}


def test_the_wide_job_starts_when_the_open_ended_job_ends() -> None:
    ended = replace(scenario(), running=())
    result = run(ended, policy=replace(POLICY, preemption=False))
    assert started(result) == {1: tuple(EIGHT)}


def test_the_drain_picks_the_node_the_fewest_open_ended_jobs_hold() -> None:
    held = [
        running(50, ["n0-g0", "n0-g1"], **OPEN),
        running(51, ["n0-g2", "n0-g3"], **OPEN),
        running(52, ["n1-g0", "n1-g1", "n1-g2"], **OPEN),
    ]
    result = run(snap(topo(4, 4), [job(1, gpu_count=4, **OPEN), job(2)], held),
                 policy=replace(POLICY, preemption=False))  # fmt: skip
    # n1 is held by one open-ended job (and has a GPU free), n0 by two: n1 is drained, so
    # its free GPU is not the small job's
    assert result.pending[1].waits_for == Blockers(jobs=(52,))
    assert started(result) == {}
