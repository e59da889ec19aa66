"""The agent's wire types (ADR 0006): what the job poll returns and what the agent reports.

Plain values with no behaviour beyond reading and writing their wire form: ``parse_spec``
turns a desired job of the poll answer into a ``JobSpec``; ``StartedEvent.wire()`` and
``ExitedEvent.wire()`` give the job events the agent posts. The state machine
(``agent/machine.py``), the launcher and the log shipper share them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

DEFAULT_GRACE_S = 30.0

Key = tuple[int, int]
"""A job run: ``(job id, run)``; ``run`` counts the job's requeues."""


# -- the desired jobs, as the poll returns them ---------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuRef:
    id: str
    index: int
    uuid: str | None = None


@dataclass(frozen=True, slots=True)
class StopOrder:
    """The server wants the job stopped (``at``: server time of the SIGTERM, if given)."""

    reason: str
    at: float | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One desired job of the poll answer (ADR 0006 "Poll response"). ``user`` is the
    ProcPlan user (``%u`` in log paths); ``run_as``, when the server sends it, is the Unix
    account the job runs as, which may differ; absent, the account is ``user``."""

    id: int
    run: int
    user: str
    command: tuple[str, ...]
    name: str = ""
    workdir: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    gpus: tuple[GpuRef, ...] = ()
    nodes: tuple[str, ...] = ()
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    started_at: float | None = None
    deadline: float | None = None
    grace_s: float = DEFAULT_GRACE_S
    stdout_path: str | None = None
    stderr_path: str | None = None
    array_id: int | None = None
    array_index: int | None = None
    stop: StopOrder | None = None
    launched_pid: int | None = None
    launched: bool = False
    run_as: str | None = None
    previous_end: str | None = None  # a requeued run: why the previous run ended

    @property
    def key(self) -> Key:
        return (self.id, self.run)


class SpecError(ValueError):
    """A desired job the agent cannot read (the daemon logs it and skips it)."""


def _opt(raw: Mapping[str, Any], name: str, kind: Callable[[Any], Any]) -> Any:
    value = raw.get(name)
    return None if value is None else kind(value)


def parse_spec(raw: Mapping[str, Any]) -> JobSpec:
    """A ``JobSpec`` from its wire object; ``SpecError`` says what is wrong."""
    try:
        command = raw.get("command") or ()
        if isinstance(command, str):
            command = (command,)
        stop = raw.get("stop")
        launched = raw.get("launched")
        return JobSpec(
            id=int(raw["id"]),
            run=int(raw.get("run") or 0),
            user=str(raw.get("user") or ""),
            command=tuple(str(part) for part in command),
            name=str(raw.get("name") or ""),
            workdir=_opt(raw, "workdir", str),
            env=tuple((str(k), str(v)) for k, v in raw.get("env") or ()),
            gpus=tuple(
                GpuRef(str(g["id"]), int(g["index"]), _opt(g, "uuid", str))
                for g in raw.get("gpus") or ()
            ),
            nodes=tuple(str(n) for n in raw.get("nodes") or ()),
            node_rank=int(raw.get("node_rank") or 0),
            master_addr=_opt(raw, "master_addr", str),
            master_port=_opt(raw, "master_port", int),
            started_at=_opt(raw, "started_at", float),
            deadline=_opt(raw, "deadline", float),
            grace_s=float(raw.get("grace_s") or DEFAULT_GRACE_S),
            stdout_path=_opt(raw, "stdout_path", str),
            stderr_path=_opt(raw, "stderr_path", str),
            array_id=_opt(raw, "array_id", int),
            array_index=_opt(raw, "array_index", int),
            stop=None if stop is None else StopOrder(str(stop.get("reason") or ""),
                                                     _opt(stop, "at", float)),
            launched_pid=None if launched is None else _opt(launched, "pid", int),
            launched=launched is not None,
            run_as=str(raw.get("run_as") or "") or None,
            previous_end=_opt(raw, "previous_end", str),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SpecError(f"unreadable job {raw.get('id', '?')!r}: {exc!r}") from exc


def parse_specs(raw: object, log: logging.Logger) -> tuple[JobSpec, ...]:
    """The desired jobs of a poll answer; a job that does not parse is logged and skipped
    (one bad spec must not stop the others)."""
    specs = []
    for item in raw if isinstance(raw, list) else ():
        try:
            specs.append(parse_spec(item))
        except SpecError as exc:
            log.error("ignoring a desired job: %s", exc)
    return tuple(specs)


# -- job events sent to the server ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartedEvent:
    job_id: int
    run: int
    pid: int
    at: float

    def wire(self) -> dict[str, Any]:
        return {"type": "started", "job_id": self.job_id, "run": self.run, "pid": self.pid,
                "at": self.at}  # fmt: skip


ExitReason = Literal["exited", "time_limit", "stopped", "launch_failed", "lost"]


@dataclass(frozen=True, slots=True)
class ExitedEvent:
    job_id: int
    run: int
    exit_code: int | None
    signal: int | None
    at: float
    reason: ExitReason
    message: str = ""

    def wire(self) -> dict[str, Any]:
        return {"type": "exited", "job_id": self.job_id, "run": self.run,
                "exit_code": self.exit_code, "signal": self.signal, "at": self.at,
                "reason": self.reason, "message": self.message}  # fmt: skip


JobEvent = StartedEvent | ExitedEvent


# -- running jobs, as the heartbeat reports them --------------------------------------------


@dataclass(frozen=True, slots=True)
class RunningJob:
    id: int
    run: int
    pid: int
