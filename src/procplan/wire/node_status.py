"""The document kept in ``node_status.report``: a node's last heartbeat, as classified.

Every server process reads it (the planner, the cluster view, ``/metrics``), so it is written
and read here only. Readings and processes are compact positional lists: a cluster's reports
are rewritten once a second, and keys would double their size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from procplan.core.node_reports import Report
from procplan.core.node_usage import ClassifiedProcess
from procplan.core.node_view import SeenProcess
from procplan.core.readings import GpuReading
from procplan.wire.base import Json

__all__ = ["flags_of", "foreign_of", "processes_of", "readings_of", "report_document"]

# Positions in the compact lists.
R_INDEX, R_UUID, R_UTIL, R_USED, R_TOTAL, R_TEMP, R_POWER, R_MIG = range(8)
P_GPU, P_PID, P_USER, P_COMMAND, P_MEMORY, P_KIND, P_JOB, P_UUID = range(8)


def report_document(
    report: Report,
    classified: Iterable[ClassifiedProcess],
    foreign: Iterable[str],
    flags: Mapping[str, list[str]],
) -> Json:
    """What views and other processes need of a heartbeat: the readings, the processes with
    their class, the foreign GPUs (sorted), the flags per GPU, the read error and the jobs
    the agent runs."""
    return {
        "readings": [
            [
                r.index,
                r.uuid,
                r.utilization_pct,
                r.memory_used_mb,
                r.memory_total_mb,
                r.temperature_c,
                r.power_w,
                r.mig,
            ]
            for r in report.readings
        ],
        "processes": [
            [
                c.gpu_id,
                c.process.pid,
                c.process.user,
                c.process.command,
                c.process.used_memory_mb,
                c.kind.value,
                c.job_id,
                c.process.gpu_uuid,
            ]
            for c in classified
        ],
        "foreign": sorted(foreign),
        "flags": dict(flags),
        "read_error": report.read_error,
        "jobs": [list(j) for j in report.jobs],
    }


def readings_of(document: Mapping[str, Any]) -> list[GpuReading]:
    """The readings of a stored report (GPUs and MIG instances), as the agent sent them."""
    return [
        GpuReading(
            index=r[R_INDEX],
            uuid=r[R_UUID],
            utilization_pct=r[R_UTIL],
            memory_used_mb=r[R_USED],
            memory_total_mb=r[R_TOTAL],
            temperature_c=r[R_TEMP],
            power_w=r[R_POWER],
            mig=r[R_MIG],
        )
        for r in document.get("readings", [])
    ]


def processes_of(document: Mapping[str, Any]) -> list[SeenProcess]:
    """The classified GPU processes of a stored report."""
    return [
        SeenProcess(
            gpu_id=p[P_GPU],
            pid=p[P_PID],
            user=p[P_USER],
            command=p[P_COMMAND],
            used_memory_mb=p[P_MEMORY],
            kind=p[P_KIND],
            job_id=p[P_JOB],
            gpu_uuid=p[P_UUID],
        )
        for p in document.get("processes", [])
    ]


def foreign_of(document: Mapping[str, Any]) -> list[str]:
    """The GPU ids a stored report found foreign (sorted)."""
    found: list[str] = document.get("foreign") or []
    return found


def flags_of(document: Mapping[str, Any]) -> dict[str, list[str]]:
    """Flags per GPU id of a stored report."""
    found: dict[str, list[str]] = document.get("flags", {})
    return found
