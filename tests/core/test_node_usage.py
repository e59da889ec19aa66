"""Classification of GPU processes (ADR 0006 §6); reading agents' reports off the wire is
tested with the API models (tests/api/test_agent_models.py)."""

from __future__ import annotations

from typing import Any

import pytest

from procplan.core.jobs import Job, JobKind, JobState
from procplan.core.model import Booking, Gpu, Node
from procplan.core.node_reports import ReportedProcess
from procplan.core.node_usage import (
    ProcessKind,
    classify,
    foreign_gpus,
    is_idle,
    unbooked_gpus,
    uuid_index,
)
from procplan.core.readings import GpuReading

NODE = Node("n1", "n1", tuple(Gpu(f"n1-gpu{i}", "H100", i, f"GPU-{i}") for i in range(4)))
UUIDS = {f"GPU-{i}": f"n1-gpu{i}" for i in range(4)}


def process(gpu: int, pid: int, user: str = "bob", **kw: Any) -> ReportedProcess:
    return ReportedProcess(
        gpu_uuid=f"GPU-{gpu}",
        pid=pid,
        used_memory_mb=100,
        user=user,
        command="python x.py",
        job_id=kw.get("job_id"),
        ancestors=tuple(kw.get("ancestors", ())),
    )


def running(job_id: int, gpus: tuple[int, ...], **kw: Any) -> Job:
    return Job(
        id=job_id,
        user=kw.get("user", "alice"),
        kind=kw.get("kind", JobKind.BATCH),
        state=JobState.RUNNING,
        node_ids=("n1",),
        gpu_ids=tuple(f"n1-gpu{g}" for g in gpus),
        pid=kw.get("pid"),
        host=kw.get("host"),
    )


def booking(gpus: tuple[int, ...], user: str) -> Booking:
    return Booking(1, "n1", tuple(f"n1-gpu{g}" for g in gpus), 0, 10**9, user, user)


@pytest.mark.parametrize(
    ("proc", "expected"),
    [
        (process(0, 10, job_id=7), ProcessKind.JOB),  # batch job on its GPU
        (process(1, 11, job_id=7), ProcessKind.STRAY),  # batch job on a GPU it does not hold
        (process(2, 12, ancestors=(500, 1)), ProcessKind.JOB),  # child of an interactive client
        (process(3, 13, user="carol"), ProcessKind.BOOKED),  # booking owner, no job
        (process(3, 14, user="dave"), ProcessKind.UNBOOKED),  # someone else on a booked GPU
        (process(1, 15), ProcessKind.UNBOOKED),  # nothing at all
        (process(0, 16, job_id=99), ProcessKind.UNBOOKED),  # a job id that is not running here
    ],
)
def test_classify(proc: ReportedProcess, expected: ProcessKind) -> None:
    jobs = [
        running(7, (0,)),
        running(8, (2,), kind=JobKind.INTERACTIVE, pid=500, host="h1"),
    ]
    [result] = classify([proc], UUIDS, "h1", jobs, [booking((3,), "carol")])
    assert result.kind is expected


def test_an_interactive_client_on_another_host_does_not_own_processes() -> None:
    job = running(8, (2,), kind=JobKind.INTERACTIVE, pid=500, host="elsewhere")
    [result] = classify([process(2, 12, ancestors=(500,))], UUIDS, "h1", [job], [])
    assert result.kind is ProcessKind.UNBOOKED


def test_foreign_and_unbooked_sets() -> None:
    jobs = [running(7, (0,))]
    procs = [process(0, 1, job_id=7), process(1, 2, job_id=7), process(2, 3, user="carol"),
             process(3, 4), process(9, 5)]  # fmt: skip
    classified = classify(procs, UUIDS, "h1", jobs, [booking((2,), "carol")])
    assert foreign_gpus(classified) == {"n1-gpu1", "n1-gpu2", "n1-gpu3"}
    assert unbooked_gpus(classified) == {"n1-gpu1", "n1-gpu3"}
    assert classified[-1].gpu_id is None  # an unknown uuid is reported, never guessed


def test_mig_instances_map_to_their_gpu() -> None:
    mig = GpuReading(1, "MIG-abc", None, 10, 9728, None, None, mig=True)
    assert uuid_index(NODE, [mig])["MIG-abc"] == "n1-gpu1"


def test_idle_needs_a_reading_no_process_and_low_utilization() -> None:
    idle = GpuReading(0, "GPU-0", 1.0, 0, 100, 30.0, 60.0)
    assert is_idle(idle, has_processes=False)
    assert not is_idle(idle, has_processes=True)
    assert not is_idle(GpuReading(0, "GPU-0", 50.0, 0, 100, 30.0, 60.0), has_processes=False)
    assert not is_idle(None, has_processes=False)
    assert not is_idle(GpuReading(0, "GPU-0", None, 0, 100, None, None), has_processes=False)
