"""Job traces for the simulator (issue #15): CSV rows in, ``TraceJob`` values out.

Each public trace has its own columns; the readers map them onto one small record so the
engine never knows where a trace came from. Times become whole seconds relative to the first
submission (the engine places them on its own simulated clock). Readers are pure functions of
the text they are given (``parse_*``); ``load_trace`` and ``load_alibaba`` alone open files.
A bad row is an error with its line number, not a silently dropped job: a replay that quietly
loses jobs would report wrong metrics.

Formats (``TraceFormat``), columns read → ``TraceJob`` fields:

- ``tiresias``: ``job_id`` → id, ``submit_time`` → submit, ``duration`` → duration,
  ``num_gpu`` → gpus; no group.
- ``philly`` (Pollux's copy): ``timestamp`` → submit, ``duration`` → duration, ``num_gpus`` →
  gpus, ``cluster`` (the VC) → group; id = line number.
- ``alibaba`` (``openb_pod_list_*.csv``): ``creation_time`` → submit, ``deletion_time −
  scheduled_time`` → duration, ``num_gpu`` → gpus, ``qos`` → group; id = line number. Pods
  that are not GPU jobs are skipped and counted (see ``parse_alibaba_pods``).
- ``csv``: our own plain format, header ``submit_s,duration_s,gpus[,group][,id]`` (any column
  order; other columns are ignored). Seconds may be floats and are rounded to whole seconds
  (durations to at least 1). ``group`` defaults to ``DEFAULT_GROUP`` and ``id`` to the line
  number when the column is absent or the cell empty; ids must be distinct integers.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

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
    ALIBABA = "alibaba"
    CSV = "csv"


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
    if math.isinf(number):
        raise ValueError(f"infinite duration {value!r}")
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


class AlibabaSkipped(NamedTuple):
    """Alibaba pods that are not jobs: ``no_gpu`` request no GPU (``num_gpu`` 0), and
    ``unscheduled`` request GPUs but were never scheduled (Pending: no ``scheduled_time``)."""

    no_gpu: int = 0
    unscheduled: int = 0

    @property
    def total(self) -> int:
        return self.no_gpu + self.unscheduled


def _alibaba_job(line: int, row: dict[str, str]) -> TraceJob | None:
    # Every time is integer seconds from the trace start; submit = creation, start = scheduled.
    created, scheduled, deleted = (
        (row[c] or "").strip() for c in ("creation_time", "scheduled_time", "deletion_time")
    )
    if not scheduled or not deleted:
        return None
    start, end = int(scheduled), int(deleted)
    if start < int(created):
        raise ValueError(f"scheduled_time {start} before creation_time {created}")
    if end < start:
        raise ValueError(f"negative duration: deletion_time {end} before scheduled_time {start}")
    return TraceJob(
        id=line,
        submit_s=int(created),
        duration_s=max(1, end - start),
        gpus=_count(row["num_gpu"]),
        group=(row["qos"] or "").strip() or DEFAULT_GROUP,
    )


def parse_alibaba_pods(
    text: str, limit: int | None = None
) -> tuple[list[TraceJob], AlibabaSkipped]:
    """Alibaba's 2023 GPU trace (``openb_pod_list_*.csv``): one job per pod that requests GPUs
    and was scheduled, with the counts of the pods skipped (over the whole file; ``limit`` then
    keeps the first ``limit`` jobs by submission).

    - submit = ``creation_time``; duration = ``deletion_time − scheduled_time`` (≥ 1 s), the
      time the pod held its GPUs; group = ``qos`` (LS, BE, Burstable, Guaranteed); id = line.
    - gpus = ``num_gpu``. A GPU-sharing pod (``gpu_milli`` < 1000, always with ``num_gpu`` 1)
      counts as one whole GPU: ProcPlan allocates whole GPUs, so this overstates the load of
      the fractional jobs (2,573 of the shared copy's; the trace is about packing GPU shares).
    - ``Running`` pods always have a ``deletion_time``, never empty. In the shared copy most
      are earlier than the end (the phase is the last one observed), and 32 GPU pods carry the
      file's largest timestamp, 12,902,960 s (20 min after the last creation): still alive
      when the trace was cut. Their durations are kept, censored at the trace end: they held
      their GPUs at least that long, and dropping them would understate the load.
    - Pods with ``num_gpu`` 0 or without ``scheduled_time`` (Pending, deleted unscheduled) are
      not jobs; a row missing ``deletion_time`` is skipped the same way.
    """
    cols = ("num_gpu", "qos", "creation_time", "scheduled_time", "deletion_time")
    jobs: list[TraceJob] = []
    no_gpu = unscheduled = 0
    for line, row in _rows(text, cols):
        try:
            if int(row["num_gpu"]) == 0:
                no_gpu += 1
                continue
            job = _alibaba_job(line, row)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"line {line}: {exc}") from None
        if job is None:
            unscheduled += 1
        else:
            jobs.append(job)
    return _finish(jobs, limit), AlibabaSkipped(no_gpu, unscheduled)


def parse_alibaba(text: str, limit: int | None = None) -> list[TraceJob]:
    """The jobs of ``parse_alibaba_pods``, without the skipped counts."""
    return parse_alibaba_pods(text, limit)[0]


def _finite(value: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _csv_job(line: int, row: dict[str, str]) -> TraceJob:
    id_text = (row.get("id") or "").strip()
    return TraceJob(
        id=int(id_text) if id_text else line,
        submit_s=round(_finite(row["submit_s"])),
        duration_s=_seconds(row["duration_s"]),
        gpus=_count(row["gpus"]),
        group=(row.get("group") or "").strip() or DEFAULT_GROUP,
    )


def parse_csv(text: str, limit: int | None = None) -> list[TraceJob]:
    """Our plain format: ``submit_s,duration_s,gpus[,group][,id]`` (see the module docstring).
    Rows need not be in time order; a repeated id is an error on its line."""
    lines: dict[int, int] = {}  # id -> the line that used it

    def make(line: int, row: dict[str, str]) -> TraceJob:
        job = _csv_job(line, row)
        if job.id in lines:
            raise ValueError(f"id {job.id} already used on line {lines[job.id]}")
        lines[job.id] = line
        return job

    return _finish(_parse(text, ("submit_s", "duration_s", "gpus"), make), limit)


PARSERS: dict[TraceFormat, Callable[[str, int | None], list[TraceJob]]] = {
    TraceFormat.TIRESIAS: parse_tiresias,
    TraceFormat.PHILLY: parse_philly,
    TraceFormat.ALIBABA: parse_alibaba,
    TraceFormat.CSV: parse_csv,
}


def load_trace(path: Path, fmt: TraceFormat, limit: int | None = None) -> list[TraceJob]:
    """Read and parse a trace file."""
    return PARSERS[fmt](path.read_text(encoding="utf-8"), limit)


def load_alibaba(path: Path, limit: int | None = None) -> tuple[list[TraceJob], AlibabaSkipped]:
    """Read and parse an Alibaba pod list, with the counts of the pods skipped."""
    return parse_alibaba_pods(path.read_text(encoding="utf-8"), limit)
