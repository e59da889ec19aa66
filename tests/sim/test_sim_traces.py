"""Trace readers: columns mapped, rows sorted, relative times, bad rows named by line."""

from __future__ import annotations

import pytest
from sim_kit import needs_trace, trace_file

from procplan.sim.traces import (
    DEFAULT_GROUP,
    TraceFormat,
    TraceJob,
    load_trace,
    parse_philly,
    parse_tiresias,
)

TIRESIAS_HEADER = "job_id,num_gpu,submit_time,iterations,model_name,duration,interval\n"
PHILLY_HEADER = "timestamp,duration,num_gpus,gpu_time,cluster\n"

# The shared trace files live outside the repository: skip where they are absent.
needs_traces = needs_trace("tiresias_60_job.csv")


def test_tiresias_rows_become_jobs_relative_to_first_submit() -> None:
    text = TIRESIAS_HEADER + "1,8,130,133,vgg11,147,23\n0,1,100,606,vgg19,164,30\n"
    assert parse_tiresias(text) == [
        TraceJob(id=0, submit_s=0, duration_s=164, gpus=1, group=DEFAULT_GROUP),
        TraceJob(id=1, submit_s=30, duration_s=147, gpus=8, group=DEFAULT_GROUP),
    ]


def test_philly_sorts_by_submit_limits_and_keeps_the_vc() -> None:
    text = PHILLY_HEADER + (
        "2017-10-09 07:01:55,66.0,1,66.0,11cb48\n"
        "2017-10-09 06:13:03,2951.0,2,5902.0,6214e9\n"
        "2017-10-09 06:13:03,0.0,1,0.0,6214e9\n"
    )
    jobs = parse_philly(text, limit=2)
    # Line numbers are the ids (the trace has none); equal submits keep line order.
    assert jobs == [
        TraceJob(id=3, submit_s=0, duration_s=2951, gpus=2, group="6214e9"),
        TraceJob(id=4, submit_s=0, duration_s=1, gpus=1, group="6214e9"),
    ]
    assert parse_philly(text)[-1] == TraceJob(2, 2932, 66, 1, "11cb48")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2017-10-09 07:01:55,66.0,0,0.0,11cb48", "GPU count"),
        ("2017-10-09 07:01:55,-5,1,0.0,11cb48", "negative duration"),
        ("yesterday,66.0,1,66.0,11cb48", "yesterday"),
        ("2017-10-09 07:01:55,nan,1,66.0,11cb48", "nan"),
    ],
)
def test_a_bad_row_names_its_line(row: str, message: str) -> None:
    text = PHILLY_HEADER + "2017-10-09 07:01:55,66.0,1,66.0,11cb48\n" + row + "\n"
    with pytest.raises(ValueError, match=rf"^line 3: .*{message}"):
        parse_philly(text)


def test_a_missing_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="missing columns num_gpu"):
        parse_tiresias("job_id,submit_time,duration\n0,0,10\n")


@needs_traces
def test_the_smoke_trace_loads_sixty_jobs() -> None:
    jobs = load_trace(trace_file("tiresias_60_job.csv"), TraceFormat.TIRESIAS)
    assert len(jobs) == 60
    assert (jobs[0].submit_s, jobs[-1].submit_s) == (0, 1779)
    assert sorted({j.gpus for j in jobs}) == [1, 2, 4, 8]
    assert [j.submit_s for j in jobs] == sorted(j.submit_s for j in jobs)
