"""Wire shapes with no route of their own to pin them: the stored heartbeat document read back,
the agent answers, the ISO memo, and one function per booking shape (exact keys and order)."""

from __future__ import annotations

import json

from procplan.core.jobs import Job
from procplan.core.model import Booking, BookingStatus, Priority
from procplan.core.node_reports import EventOutcome, Report, ReportedProcess
from procplan.core.node_usage import ClassifiedProcess, ProcessKind
from procplan.core.readings import GpuReading
from procplan.core.timeutil import HOUR, parse_instant, to_iso
from procplan.core.views import ClusterCounts, LocalStatus
from procplan.wire.agents import events_json
from procplan.wire.base import IsoMemo
from procplan.wire.bookings import (
    booking_holder,
    booking_v1,
    calendar_claims,
    procplan_booked,
    procplan_bookings,
)
from procplan.wire.cluster import cluster_status
from procplan.wire.jobs import job_submitted
from procplan.wire.node_status import (
    flags_of,
    foreign_of,
    processes_of,
    readings_of,
    report_document,
)
from procplan.wire.srun import srun_status

T0 = parse_instant("2026-11-23T10:00:00+00:00")
BOOKING = Booking(7, "n1", ("g1", "g0"), T0, T0 + HOUR, "ada", "AB", Priority.HIGH,
                  BookingStatus.ACTIVE, T0 - HOUR)  # fmt: skip


def dumps(payload: object) -> str:
    return json.dumps(payload, separators=(",", ":"))


def test_each_booking_shape_has_its_keys_in_order() -> None:
    start, end, made = '"2026-11-23T10:00:00+00:00"', '"2026-11-23T11:00:00+00:00"', "09:00"
    assert dumps(procplan_bookings([BOOKING])[0]) == (
        f'{{"id":7,"user_label":"AB","start":{start},"end":{end},"status":"active",'
        '"gpu_ids":["g1","g0"],"priority":"high"}'
    )
    assert dumps(procplan_booked(BOOKING)) == (
        f'{{"booking_id":7,"node_id":"n1","gpu_ids":["g1","g0"],"start":{start},"end":{end},'
        '"user_label":"AB","priority":"high"}'
    )
    assert dumps(booking_v1(BOOKING)) == (
        f'{{"id":7,"node_id":"n1","gpu_ids":["g1","g0"],"start":{start},"end":{end},'
        f'"user":"ada","label":"AB","priority":"high","status":"active",'
        f'"created_at":"2026-11-23T{made}:00+00:00"}}'
    )
    assert dumps(calendar_claims([BOOKING])[0]) == (
        f'{{"booking_id":7,"start":{start},"end":{end},"user":"ada","label":"AB",'
        '"priority":"high","status":"active"}'
    )
    assert dumps(booking_holder(BOOKING)) == (
        f'{{"kind":"booking","booking_id":7,"user":"ada","label":"AB","end":{end}}}'
    )


def test_procplan_bookings_share_gpu_lists_but_not_objects() -> None:
    first, second = procplan_bookings([BOOKING, BOOKING._replace(id=8)])
    assert first is not second and first["gpu_ids"] is second["gpu_ids"]


def test_the_iso_memo_formats_like_to_iso_and_stays_bounded() -> None:
    memo = IsoMemo(cap=3)
    instants = [T0 + i * 61 for i in range(10)]
    assert [memo(t) for t in instants] == [to_iso(t) for t in instants]
    assert len(memo.cache) <= 3


def test_the_stored_heartbeat_document_reads_back() -> None:
    reading = GpuReading(0, "GPU-0", 50.0, 1000, 81559, 40.0, 100.0)
    mig = GpuReading(0, "MIG-0", 10.0, 10, 100, None, None, mig=True)
    process = ReportedProcess("GPU-0", 77, 1, "bob", "python x", None, (1,))
    report = Report("s", (reading, mig), (process,), ((5, 0, 99),), None)
    classified = [ClassifiedProcess(process, "g0", ProcessKind.UNBOOKED, None)]
    document = json.loads(json.dumps(report_document(report, classified, {"g0"}, {"g0": ["x"]})))
    assert readings_of(document) == [reading, mig]
    [seen] = processes_of(document)
    assert (seen.gpu_id, seen.pid, seen.user, seen.kind, seen.gpu_uuid) == (
        "g0", 77, "bob", "unbooked", "GPU-0"
    )  # fmt: skip
    assert (foreign_of(document), flags_of(document)) == (["g0"], {"g0": ["x"]})
    assert document["jobs"] == [[5, 0, 99]]
    assert (readings_of({}), processes_of({}), foreign_of({}), flags_of({})) == ([], [], [], {})


def test_event_results_carry_a_message_only_when_refused() -> None:
    outcomes = [
        EventOutcome(1, 0, "started", "running"),
        EventOutcome(2, 0, "exited", "ignored", "gone"),
    ]
    assert dumps(events_json(outcomes)) == (
        '{"results":[{"job_id":1,"run":0,"type":"started","state":"running"},'
        '{"job_id":2,"run":0,"type":"exited","state":"ignored","message":"gone"}]}'
    )


def test_cluster_status_keeps_the_go_key_order() -> None:
    counts = ClusterCounts(4, 2, 2, 2, 9, 3, 1)
    assert list(cluster_status(counts, 1).items()) == [
        ("total_gpus", 4), ("available_gpus", 2), ("total_nodes", 2), ("online_nodes", 1),
        ("total_jobs", 9), ("pending_jobs", 3), ("running_jobs", 1),
    ]  # fmt: skip


def test_srun_status_keeps_local_gpu_schedulers_key_order() -> None:
    local = LocalStatus("here", 4, (0, 2), 1, 2, 5)
    assert json.dumps(srun_status("1.0", 7, 8080, local), separators=(",", ":")) == (
        '{"service":"local-gpu-scheduler","version":"1.0","uptime_s":7,"port":8080,'
        '"gpus_total":4,"gpus_allocated":[0,2],"jobs_running":1,"jobs_queued":2,'
        '"jobs_total":5,"node_id":"here"}'
    )


def test_a_job_array_submission_lists_every_id() -> None:
    jobs = [Job(id=i, user="ada", array_id=3, array_index=i - 3) for i in (3, 4)]
    first = {"id": "3"}
    assert job_submitted(first, jobs, array=True) == {
        "job_id": "3", "status": "submitted", "message": "Job submitted successfully",
        "job": first, "job_ids": ["3", "4"], "array_id": "3",
    }  # fmt: skip
    assert "job_ids" not in job_submitted(first, jobs[:1], array=False)
