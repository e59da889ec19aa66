"""The server's side of the agent protocol (ADR 0006): registration, heartbeat, the desired-jobs
poll, job events and log shipping. The agent reads these with ``agent.protocol``; what agents
send is read by ``api.models.agents``.
"""

from __future__ import annotations

from collections.abc import Iterable

from procplan.core.model import Gpu
from procplan.core.node_reports import DesiredJobs, DesiredRun, EventOutcome, LogShipped, Registered
from procplan.wire.base import Json

__all__ = [
    "desired_json",
    "events_json",
    "heartbeat_ok",
    "job_specs",
    "log_shipped",
    "offset_mismatch",
    "registered_json",
]


def _gpu_ref(gpu: Gpu) -> Json:
    return {"id": gpu.id, "index": gpu.index, "uuid": gpu.uuid}


def registered_json(reg: Registered) -> Json:
    """``POST /api/v1/agents/register``: the session to send with every later call."""
    return {
        "node_id": reg.node_id,
        "session": reg.session,
        "interval_s": reg.interval_s,
        "down_after_s": reg.down_after_s,
        "server_time": reg.server_time,
        "gpus": [_gpu_ref(g) for g in reg.gpus],
        "warnings": list(reg.warnings),
    }


def heartbeat_ok() -> Json:
    return {"ok": True}


def _spec(run: DesiredRun) -> Json:
    job = run.job
    return {
        "id": job.id,
        "run": job.requeues,
        "user": job.user,
        "name": job.name,
        "command": list(job.command),
        "workdir": job.workdir,
        "env": [list(pair) for pair in job.env],
        "gpus": [_gpu_ref(g) for g in run.gpus],
        "nodes": list(job.node_ids),
        "node_rank": run.node_rank,
        "master_addr": run.master_addr,
        "master_port": run.master_port,
        "started_at": job.started_at,
        "deadline": run.deadline,
        "grace_s": run.grace_s,
        "stdout_path": job.stdout_path,
        "stderr_path": job.stderr_path,
        "array_id": job.array_id,
        "array_index": job.array_index,
        "stop": None
        if job.preempt_at is None
        else {"reason": job.message or "preempted", "at": job.preempt_at},
        "launched": None if job.pid is None else {"pid": job.pid, "host": job.host},
        # A requeued run: why the previous one ended, for the separator in its log.
        "previous_end": (job.message or "ended") if job.requeues else None,
    }


def job_specs(runs: Iterable[DesiredRun]) -> list[Json]:
    """The desired jobs of the poll answer ("Poll response"): instants are epoch seconds."""
    return [_spec(run) for run in runs]


def desired_json(desired: DesiredJobs) -> Json:
    """``GET /api/v1/agents/{node}/jobs``: the digest and the desired jobs."""
    return {"version": desired.version, "jobs": job_specs(desired.runs)}


def events_json(outcomes: Iterable[EventOutcome]) -> Json:
    """``POST /api/v1/agents/{node}/events``: one result per event, in order."""
    results: list[Json] = []
    for outcome in outcomes:
        result: Json = {
            "job_id": outcome.job_id,
            "run": outcome.run,
            "type": outcome.type,
            "state": outcome.state,
        }
        if outcome.message is not None:
            result["message"] = outcome.message
        results.append(result)
    return {"results": results}


def log_shipped(shipped: LogShipped) -> Json:
    return {"size": shipped.size, "truncated": shipped.truncated}


def offset_mismatch(message: str, code: str, size: int) -> Json:
    """The 409 of a log chunk at the wrong offset: the error, and the stored ``size`` to
    resend from."""
    return {"error": message, "status": 409, "code": code, "size": size}
