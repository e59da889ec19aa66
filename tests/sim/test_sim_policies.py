"""The policies, preemption, bookings and node failures of the replay, on cases small enough
to work out by hand (times in seconds from the first submission)."""

from __future__ import annotations

from procplan.sim.cluster import parse_nodes
from procplan.sim.engine import JobRecord, LimitMode, simulate
from procplan.sim.metrics import summarize
from procplan.sim.policies import LAS_BANDS, POLICIES, PolicyName, las_band, las_next_limit
from procplan.sim.runner import Scenario, run, sum_samples
from procplan.sim.traces import TraceJob
from procplan.sim.workload import NodeOutage, SimBooking, booking_load, failure_schedule

ONE_NODE = parse_nodes("1x8")
# Job 1 (4 GPUs, 100 s) starts at once; job 2 (8 GPUs) waits for it; job 3 (4 GPUs, 90 s)
# fits beside job 1 and ends before job 1 does, so it delays nobody.
THREE = [TraceJob(1, 0, 100, 4), TraceJob(2, 1, 50, 8), TraceJob(3, 2, 90, 4)]


def _times(records: list[JobRecord]) -> dict[int, tuple[int, int]]:
    return {r.id: (r.start_s, r.end_s) for r in records}


def test_fifo_lets_nothing_pass_a_blocked_job() -> None:
    fifo = simulate(THREE, ONE_NODE, LimitMode.ORACLE, POLICIES[PolicyName.FIFO])
    assert _times(fifo.records) == {1: (0, 100), 2: (100, 150), 3: (150, 240)}
    default = simulate(THREE, ONE_NODE, LimitMode.ORACLE)  # backfill: job 3 goes at once
    assert _times(default.records) == {1: (0, 100), 3: (2, 92), 2: (100, 150)}


def test_sjf_runs_the_shortest_waiting_job_first() -> None:
    jobs = [TraceJob(1, 0, 100, 8), TraceJob(2, 1, 300, 8), TraceJob(3, 2, 20, 8)]
    result = simulate(jobs, ONE_NODE, LimitMode.ORACLE, POLICIES[PolicyName.SJF])
    assert _times(result.records) == {1: (0, 100), 3: (100, 120), 2: (120, 420)}
    fifo = simulate(jobs, ONE_NODE, LimitMode.ORACLE, POLICIES[PolicyName.FIFO])
    assert _times(fifo.records) == {1: (0, 100), 2: (100, 400), 3: (400, 420)}


def test_srtf_preempts_a_longer_remaining_job_and_resumes_it() -> None:
    jobs = [TraceJob(1, 0, 100, 8), TraceJob(2, 30, 20, 8)]
    result = simulate(jobs, ONE_NODE, LimitMode.ORACLE, POLICIES[PolicyName.SRTF])
    # At 30 job 1 has 70 s left, job 2 needs 20: job 1 stops, resumes at 50, ends at 120.
    assert _times(result.records) == {1: (0, 120), 2: (30, 50)}
    first = next(r for r in result.records if r.id == 1)
    assert (first.held_s, first.preemptions, result.preemptions) == (100, 1, 1)
    metrics = summarize(result.records, 8)
    assert metrics["queue_avg"] == 10.0  # job 1 waited 20 s back in the queue, job 2 none
    assert metrics["preempted"] == 0.5
    # A job with more time left than the running one waits.
    late = [TraceJob(1, 0, 100, 8), TraceJob(2, 30, 80, 8)]
    calm = simulate(late, ONE_NODE, LimitMode.ORACLE, POLICIES[PolicyName.SRTF])
    assert _times(calm.records) == {1: (0, 100), 2: (100, 180)} and calm.preemptions == 0


def test_las_demotes_a_job_after_its_first_band_and_lets_a_new_one_in() -> None:
    assert (las_band(0), las_band(LAS_BANDS[0]), las_band(LAS_BANDS[1])) == (0, 1, 2)
    assert las_next_limit(0) == LAS_BANDS[0] and las_next_limit(LAS_BANDS[1]) is None
    # Job 1 (8 GPUs) reaches 3,600 GPU-s at 450 s; job 2 arrived at 100 and preempts it
    # then (no duration knowledge: bands of attained service only).
    jobs = [TraceJob(1, 0, 1000, 8), TraceJob(2, 100, 50, 8)]
    result = simulate(jobs, ONE_NODE, LimitMode.NONE, POLICIES[PolicyName.LAS])
    assert _times(result.records) == {1: (0, 1050), 2: (450, 500)}
    assert result.preemptions == 1


def test_bookings_are_honoured_and_stop_open_ended_jobs() -> None:
    # Node n0 is booked over [100, 200) by someone outside the trace.
    booking = SimBooking(1, "n0", 100, 200, "booker1")
    jobs = [TraceJob(1, 0, 150, 8), TraceJob(2, 10, 500, 8)]
    limited = simulate(jobs, parse_nodes("2x8"), LimitMode.ORACLE, bookings=[booking])
    # Job 1 would cross the booking on n0: it goes to n1. Job 2 would too: it waits for n1.
    assert _times(limited.records) == {1: (0, 150), 2: (150, 650)}
    assert limited.bookings == 1 and limited.bookings_broken == []
    open_ended = simulate(jobs[:1], parse_nodes("1x8"), LimitMode.NONE, bookings=[booking])
    # Open-ended, it starts on n0, is stopped when the booking begins, resumes after it.
    assert _times(open_ended.records) == {1: (0, 250)}
    assert open_ended.preemptions == 1 and open_ended.bookings_broken == []


def test_a_failed_node_loses_the_run_and_the_job_runs_again_elsewhere() -> None:
    outage = NodeOutage("n0", 40, 1000)
    jobs = [TraceJob(1, 0, 100, 8)]
    result = simulate(jobs, parse_nodes("2x8"), LimitMode.ORACLE, outages=[outage])
    (record,) = result.records
    assert (record.start_s, record.end_s, record.held_s) == (0, 140, 140)
    assert result.lost_runs == 1
    assert summarize(result.records, 16)["queue_avg"] == 0.0  # it never waited: held 140 s


def test_workload_generators_are_seeded_and_sized() -> None:
    topology = parse_nodes("10x8")
    bookings = booking_load(topology, 3 * 86_400, 0.1, seed=4)
    assert len(bookings) == 3 and bookings == booking_load(topology, 3 * 86_400, 0.1, seed=4)
    assert {b.end_s - b.start_s for b in bookings} == {86_400}
    outages = failure_schedule(topology, 100 * 86_400, 10 * 86_400, 3600, seed=2)
    assert 50 < len(outages) < 200 and all(o.up_s - o.down_s == 3600 for o in outages)
    assert failure_schedule(topology, 100, 0, 10) == [] and booking_load(topology, 100, 0) == []


def test_partitions_merge_into_one_result() -> None:
    a = [TraceJob(1, 0, 100, 8), TraceJob(2, 0, 100, 8)]
    b = [TraceJob(3, 50, 10, 2)]
    parts = [("a", a, parse_nodes("1x8")), ("b", b, parse_nodes("1x2"))]
    merged = run(parts, Scenario())
    assert _times(merged.records) == {1: (0, 100), 2: (100, 200), 3: (50, 60)}
    # The queue over time is the sum of both partitions' step functions.
    assert [(s.t_s, s.pending, s.busy_gpus) for s in merged.samples] == [
        (0, 1, 8), (50, 1, 10), (60, 1, 8), (100, 0, 8), (200, 0, 0),
    ]  # fmt: skip
    assert sum_samples([]) == []
