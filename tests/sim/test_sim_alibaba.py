"""The Alibaba pod reader: which pods are jobs, what is skipped and counted, bad rows."""

from __future__ import annotations

from collections import Counter

import pytest
from sim_kit import needs_trace, trace_file

from procplan.sim.traces import (
    AlibabaSkipped,
    TraceFormat,
    TraceJob,
    load_alibaba,
    load_trace,
    parse_alibaba,
    parse_alibaba_pods,
)

PODS = trace_file("alibaba_openb_pod_list_default.csv")
needs_pods = needs_trace(PODS.name)

HEADER = (
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
    "creation_time,deletion_time,scheduled_time\n"
)
PODS_TEXT = HEADER + (
    "p0,12000,16384,1,1000,,LS,Running,100,12902960,100\n"  # still running at the trace end
    "p1,6000,12288,1,460,,BE,Succeeded,50,700,60\n"  # a GPU share: one whole GPU
    "p2,88000,327680,0,0,,LS,Running,70,900,70\n"  # no GPU: not a job
    "p3,11908,47104,8,1000,V100M16|V100M32,,Failed,200,200,200\n"  # no qos; zero run time
    "p4,11908,47104,1,1000,,BE,Pending,300,420,\n"  # never scheduled: not a job
)


def test_gpu_pods_that_ran_become_jobs_and_the_rest_are_counted() -> None:
    jobs, skipped = parse_alibaba_pods(PODS_TEXT)
    assert jobs == [
        TraceJob(id=3, submit_s=0, duration_s=640, gpus=1, group="BE"),
        TraceJob(id=2, submit_s=50, duration_s=12902860, gpus=1, group="LS"),
        TraceJob(id=5, submit_s=150, duration_s=1, gpus=8, group="default"),
    ]
    assert skipped == AlibabaSkipped(no_gpu=1, unscheduled=1)
    assert skipped.total == 2
    assert parse_alibaba(PODS_TEXT, limit=1) == jobs[:1]
    # The counts cover the whole file, whatever the limit.
    assert parse_alibaba_pods(PODS_TEXT, limit=1)[1] == skipped


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("p9,1,1,x,1000,,LS,Running,10,20,10", "invalid literal"),
        ("p9,1,1,-1,1000,,LS,Running,10,20,10", "GPU count"),
        ("p9,1,1,1,1000,,LS,Running,10,20,30", "negative duration"),
        ("p9,1,1,1,1000,,LS,Running,30,40,20", "before creation_time"),
        ("p9,1,1,1,1000,,LS,Running,soon,40,20", "soon"),
    ],
)
def test_a_bad_pod_names_its_line(row: str, message: str) -> None:
    with pytest.raises(ValueError, match=rf"^line 7: .*{message}"):
        parse_alibaba(PODS_TEXT + row + "\n")


def test_a_missing_column_is_an_error() -> None:
    with pytest.raises(ValueError, match="missing columns scheduled_time"):
        parse_alibaba("num_gpu,qos,creation_time,deletion_time\n1,LS,0,5\n")


@needs_pods
def test_the_real_pod_list() -> None:
    jobs, skipped = load_alibaba(PODS)
    # README: 8,152 pods, 1,088 without GPUs, 7,064 with; 861 of these never scheduled.
    assert skipped == AlibabaSkipped(no_gpu=1088, unscheduled=861)
    assert len(jobs) == 6203 and len(jobs) + skipped.total == 8152
    assert len(jobs) + skipped.unscheduled == 7064
    assert Counter(j.gpus for j in jobs) == {1: 6129, 2: 15, 4: 15, 8: 44}
    assert {j.group for j in jobs} == {"LS", "BE", "Burstable", "Guaranteed"}
    assert jobs[0].submit_s == 0 and min(j.duration_s for j in jobs) >= 1
    assert load_trace(PODS, TraceFormat.ALIBABA, limit=10) == jobs[:10]
