"""Job traces for the simulator (issue #15): CSV rows in, ``TraceJob`` values out.

Each public trace has its own columns; the readers map them onto one small record so the
engine never knows where a trace came from. Times become whole seconds relative to the first
submission (the engine places them on its own simulated clock). Readers are pure functions of
the text they are given (``parse_*``); ``load_trace`` is the one function that opens a file.
A bad row is an error with its line number, not a silently dropped job: a replay that quietly
loses jobs would report wrong metrics.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path

DEFAULT_GROUP = "default"


@dataclass(frozen=True, slots=True)
class TraceJob:
    """One job of a trace: ``submit_s`` relative to the first submission, ``duration_s`` its
    real run time (≥ 1 s), ``gpus`` its width and ``group`` its virtual cluster (or user)."""

    id: int
    submit_s: int
    duration_s: int
    gpus: int
    group: str = DEFAULT_GROUP


class TraceFormat(StrEnum):
    TIRESIAS = "tiresias"
    PHILLY = "philly"


def _rows(text: str, required: Iterable[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """``(line number, row)`` pairs; ``ValueError`` when a required column is missing."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"line 1: missing columns {', '.join(missing)}")
    for row in reader:
        yield reader.line_num, row


def _seconds(value: str) -> int:
    """A duration in seconds (``"66.0"`` too), rounded, at least 1 (a zero-length job would
    finish at the instant it starts and tell the planner nothing)."""
    number = float(value)
    if not number >= 0:  # also refuses NaN
        raise ValueError(f"negative duration {value!r}")
    return max(1, round(number))


def _count(value: str) -> int:
    count = int(value)
    if count < 1:
        raise ValueError(f"GPU count must be at least 1, not {value!r}")
    return count


def _finish(jobs: list[TraceJob], limit: int | None) -> list[TraceJob]:
    """Sorted by submission then id, cut to the first ``limit``, submissions made relative."""
    jobs.sort(key=lambda j: (j.submit_s, j.id))
    if limit is not None:
        jobs = jobs[: max(limit, 0)]
    if not jobs:
        return []
    first = jobs[0].submit_s
    return [replace(j, submit_s=j.submit_s - first) for j in jobs]


def _parse(
    text: str, required: tuple[str, ...], make: Callable[[int, dict[str, str]], TraceJob]
) -> list[TraceJob]:
    jobs: list[TraceJob] = []
    for line, row in _rows(text, required):
        try:
            jobs.append(make(line, row))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"line {line}: {exc}") from None
    return jobs


def _tiresias_job(line: int, row: dict[str, str]) -> TraceJob:
    return TraceJob(
        id=int(row["job_id"]),
        submit_s=int(float(row["submit_time"])),
        duration_s=_seconds(row["duration"]),
        gpus=_count(row["num_gpu"]),
    )


def _philly_job(line: int, row: dict[str, str]) -> TraceJob:
    # No job id in the trace: the line number is one, stable across sorts.
    submitted = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S")
    epoch = datetime(1970, 1, 1)
    group = (row["cluster"] or "").strip() or DEFAULT_GROUP
    return TraceJob(
        id=line,
        submit_s=int((submitted - epoch).total_seconds()),
        duration_s=_seconds(row["duration"]),
        gpus=_count(row["num_gpus"]),
        group=group,
    )


def parse_tiresias(text: str, limit: int | None = None) -> list[TraceJob]:
    """Tiresias' ``60_job.csv`` columns: job_id, num_gpu, submit_time (s), duration (s)."""
    cols = ("job_id", "num_gpu", "submit_time", "duration")
    return _finish(_parse(text, cols, _tiresias_job), limit)


def parse_philly(text: str, limit: int | None = None) -> list[TraceJob]:
    """Pollux's Philly CSV: timestamp, duration, num_gpus, gpu_time, cluster (the VC). The rows
    are not in time order; ``limit`` keeps the first ``limit`` jobs by submission time."""
    cols = ("timestamp", "duration", "num_gpus", "cluster")
    return _finish(_parse(text, cols, _philly_job), limit)


PARSERS: dict[TraceFormat, Callable[[str, int | None], list[TraceJob]]] = {
    TraceFormat.TIRESIAS: parse_tiresias,
    TraceFormat.PHILLY: parse_philly,
}


def load_trace(path: Path, fmt: TraceFormat, limit: int | None = None) -> list[TraceJob]:
    """Read and parse a trace file."""
    return PARSERS[fmt](path.read_text(encoding="utf-8"), limit)
